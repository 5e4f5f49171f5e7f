"""heaplint's rule language: rule files, expressions, compiler, rule tests."""
