"""Symbolized allocation stacks for ``heaplint synth``.

Every workload allocates from a few named call sites.  A stack is the frames
of one site, innermost first, the way a symbolized ETW StackWalk reads::

    ntdll.dll!RtlpAllocateHeapInternal+0x..   (the heap itself)
    ntdll.dll!RtlAllocateHeap+0x..
    ucrtbase.dll!_malloc_base+0x..            (the CRT, for new/malloc sites)
    render.exe!operator new+0x..
    render.exe!TextureCache::Load+0x4c        (the site)
    render.exe!TextureCache::Get+0x..         (its callers)
    ...
    kernel32.dll!BaseThreadInitThunk+0x14
    ntdll.dll!RtlUserThreadStart+0x21

Frame offsets are derived from the function name (CRC-32), so one function has
the same offset in every stack and every run.
"""

from __future__ import annotations

import zlib

from heaplint.engine.events import StackTable

#: per image: the application class and three nouns its sites are named after
THEMES: dict[str, tuple[str, str, str, str]] = {
    "render.exe": ("Renderer", "Texture", "Mesh", "Shader"),
    "netsvc.exe": ("Server", "Session", "Request", "Connection"),
    "indexer.exe": ("Indexer", "Document", "Posting", "Term"),
    "audiosvc.exe": ("Mixer", "Sample", "Voice", "Stream"),
    "updater.exe": ("Updater", "Manifest", "Chunk", "Package"),
    "thumbgen.exe": ("ThumbnailService", "Image", "Tile", "Codec"),
}
IMAGES: tuple[str, ...] = tuple(THEMES)
_GENERIC = ("Worker", "Job", "Task", "Blob")

#: workload kind -> call sites, each the application frames innermost first.
#: {A} is the application class, {N0}..{N2} its nouns.
SITES: dict[str, tuple[tuple[str, ...], ...]] = {
    "cache": (
        ("{N0}Cache::Load", "{N0}Cache::Get", "{A}::Update"),
        ("{N0}Cache::Decompress", "{N0}Cache::Load", "{N0}Cache::Get", "{A}::Update"),
    ),
    "lfh-churn": (
        ("{N1}::Create", "{N1}List::Add", "{A}::Tick"),
        ("EventQueue::Post", "{A}::Dispatch", "{A}::Tick"),
        ("{N2}Pool::Acquire", "{A}::Process{N2}", "{A}::Tick"),
    ),
    "temp-churn": (
        ("std::basic_string<char>::_Construct", "{N1}::ToString", "Log::Format"),
        ("Json::Value::Value", "{N1}::Serialize", "{A}::Report"),
    ),
    "sawtooth": (
        ("FrameArena::Push", "{A}::Build{N1}Batch", "{A}::Frame"),
        ("FrameArena::Push", "{A}::Cull{N1}es", "{A}::Frame"),
    ),
    "warmup": (
        ("{N2}Pool::Grow", "{N2}Pool::Acquire", "{A}::Start"),
        ("{N0}Registry::Register", "{A}::LoadPlugins", "{A}::Start"),
    ),
    "grow-buffer": (
        ("ByteBuffer::Reserve", "ByteBuffer::Append", "{N1}Writer::Write"),
        ("std::vector<{N0}>::_Resize_reallocate", "{N0}Batch::Add", "{A}::Flush"),
    ),
    "slowpath-burst": (("StagingBuffer::Resize", "{A}::Upload{N0}", "{A}::Frame"),),
    "scratch-heap": (
        ("ScratchHeap::Alloc", "{A}::Run{N2}Job", "ThreadPool::Execute"),
        ("ScratchHeap::Alloc", "{N2}Parser::Parse", "{A}::Run{N2}Job"),
    ),
    "resident": (
        ("{N1}Index::Insert", "{N1}Index::Add{N0}", "{A}::Ingest"),
        ("{N1}Index::Split", "{N1}Index::Insert", "{A}::Ingest"),
    ),
    "leak": (("{N1}::Clone", "{N0}Handler::OnMessage", "{A}::Dispatch"),),
    "defect": (("{N2}::Attach", "{N2}Registry::Update", "{A}::Tick"),),
    "storm": (("StagingBuffer::Resize", "{A}::Stream{N0}", "{A}::Frame"),),
    "chain": (("StringBuilder::Append", "{N1}::ToJson", "{A}::Report"),),
    "arena": (("Arena::Allocate", "{N2}Importer::Read", "{A}::Import"),),
}

_MAIN_TAIL = ("{A}::Run", "wmain", "__scrt_common_main_seh")
_WORKER_TAIL = ("ThreadPool::WorkerLoop",)
_CRT_WORKER = "ucrtbase.dll!thread_start<unsigned int (__cdecl*)(void *),1>"
_OS_TAIL = ("kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart")
_ALLOC_TOP = ("ntdll.dll!RtlpAllocateHeapInternal", "ntdll.dll!RtlAllocateHeap")
_REALLOC_TOP = ("ntdll.dll!RtlpReAllocateHeapInternal", "ntdll.dll!RtlReAllocateHeap")


def _offset(name: str) -> str:
    """A stable, plausible return-address offset for ``name``."""
    return f"+0x{(zlib.crc32(name.encode()) % 0x3F0) + 0x10:x}"


def theme(image: str) -> tuple[str, str, str, str]:
    """(application class, noun 0, noun 1, noun 2) for an image name."""
    return THEMES.get(image, _GENERIC)


class StackCatalogue:
    """Builds the trace's stack table; identical frame lists share one id."""

    def __init__(self) -> None:
        self.table: StackTable = {}
        self._ids: dict[tuple[str, ...], int] = {}

    def site(self, image: str, kind: str, index: int, *, realloc: bool = False, worker: bool = True) -> int:
        """The stack id of call site ``index`` (wrapping) of workload ``kind``
        in ``image``; ``realloc`` puts RtlReAllocateHeap on top."""
        a, n0, n1, n2 = theme(image)
        sites = SITES[kind]
        app = [f.format(A=a, N0=n0, N1=n1, N2=n2) for f in sites[index % len(sites)]]
        module = image
        frames: list[str] = list(_REALLOC_TOP if realloc else _ALLOC_TOP)
        if not kind.startswith("scratch"):  # scratch heaps call HeapAlloc directly
            frames.append("ucrtbase.dll!_realloc_base" if realloc else "ucrtbase.dll!_malloc_base")
            if not realloc:
                frames.append(f"{module}!operator new")
        frames.extend(f"{module}!{f}" for f in app)
        if worker:
            frames.extend(f"{module}!{f}" for f in _WORKER_TAIL)
            frames.append(_CRT_WORKER)
        else:
            frames.extend(f"{module}!{f.format(A=a)}" for f in _MAIN_TAIL)
        frames.extend(_OS_TAIL)
        return self.add(tuple(f + _offset(f) for f in frames))

    def add(self, frames: tuple[str, ...]) -> int:
        """The id of ``frames``, assigning the next id (from 1) when new."""
        sid = self._ids.get(frames)
        if sid is None:
            sid = self._ids[frames] = len(self._ids) + 1
            self.table[sid] = frames
        return sid
