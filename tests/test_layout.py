"""The package's shape: few modules at the top, small files, and imports that flow one way."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'alexnet_tf1')


def _modules():
    """{dotted name: path} of every module in the package."""
    out = {}
    for folder, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith('.py'):
                rel = os.path.relpath(os.path.join(folder, n), os.path.dirname(ROOT))[:-3]
                out[rel.replace(os.sep, '.').removesuffix('.__init__')] = os.path.join(folder, n)
    return out


def _imports(name, path, known):
    """The package modules `name` imports anywhere in its file (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = name.split('.')
                pkg = parts if path.endswith('__init__.py') else parts[:-1]
                base = '.'.join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                full = f'{base}.{a.name}'
                found.add(full if full in known else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != name}


def test_at_most_ten_modules_sit_at_the_top_of_the_package():
    top = sorted(n for n in os.listdir(ROOT) if n.endswith('.py'))
    assert len(top) <= 10, top


def test_no_file_in_the_package_is_over_400_lines():
    long = {m: n for m, p in _modules().items() if (n := sum(1 for _ in open(p))) > 400}
    assert not long, long


def test_no_module_imports_itself_through_others():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    # a package's __init__ importing its own modules is not a circle through them
    for m in graph:
        graph[m] = {d for d in graph[m] if not d.startswith(m + '.')}
    seen, on_path, circles = set(), [], []

    def visit(m):
        if m in on_path:
            circles.append(on_path[on_path.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        on_path.append(m)
        for d in sorted(graph[m]):
            visit(d)
        on_path.pop()

    for m in sorted(graph):
        visit(m)
    assert not circles, circles


def test_a_run_without_paths_writes_beside_run_train_py_not_inside_the_package():
    from alexnet_tf1.training import start
    top = os.path.dirname(ROOT)
    assert os.path.isfile(os.path.join(top, 'run_train.py'))
    assert start.default_train_dir('alexnet') == os.path.join(top, 'checkpoints', 'alexnet')
    assert start.PROJECT_ROOT == top
