#!/usr/bin/env bash
# Mutation testing of the modules that decide truth, against the fast (engine-free) tests: mutmut changes
# one operator, constant or call at a time, and a mutant that no test notices is a rule nobody checks.
#
#   scripts/mutation.sh [--ci] [MODULE ...]     default modules: scaleout.verdict scaleout.stats
#
# MODULE is a dotted module name (scaleout.render.nginx, scaleout.files, ...). The run happens in a scratch
# copy of this checkout (mutmut rewrites the files it mutates), so the work tree is never touched. It prints
# per module: mutants, killed, survived, the kill ratio, and each surviving mutant as a diff; the same report
# goes to .mutation/report.txt. --ci mutates scaleout.verdict only, against the probe's own fast tests
# (quick enough for CI), and exits 1 when its kill ratio is under MUTATION_FLOOR percent (default 90).
# MUTATION_TESTS: the tests to run (default: every fast test, tests/); MUTATION_PYTEST_ARGS: more pytest
# arguments (e.g. --deselect ...); MUTATION_JOBS: parallel mutants (default 2).
# Needs mutmut 3 (`pip install -e '.[test]'` installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3

log() { echo "mutation.sh: $*" >&2; }

ci=0
tests="${MUTATION_TESTS:-tests/}"
if [ "${1:-}" = "--ci" ]; then
  ci=1
  shift
  set -- scaleout.verdict
  tests="${MUTATION_TESTS:-tests/test_verdict.py tests/test_probe_project.py tests/test_probe_stats.py}"
fi
[ $# -gt 0 ] || set -- scaleout.verdict scaleout.stats

"$python" -c 'import mutmut' 2>/dev/null || { log "mutmut is missing: pip install -e '.[test]'"; exit 2; }

files=()
for mod in "$@"; do
  rel=${mod//.//}
  if [ -f "$rel.py" ]; then files+=("$rel.py")
  elif [ -f "$rel/__init__.py" ]; then files+=("$rel/__init__.py")
  else log "no module $mod (looked for $rel.py and $rel/__init__.py)"; exit 2
  fi
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-mutation.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# the checkout as it is now (committed or not), without what git ignores
git ls-files -z --cached --others --exclude-standard |
  tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$scratch"

# A test that runs the CLI in a subprocess runs the mutants too, but cannot report to mutmut's coverage
# statistics (they live in the test process; the subprocess would fail looking for mutmut's settings):
# while mutmut collects them, such a subprocess runs the original code.
cat >"$scratch/sitecustomize.py" <<'PY'
import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
PY

only=$(printf '"%s", ' "${files[@]}")
# mutmut runs the tests in scratch/mutants/: everything beside the package goes there too (examples, templates ...)
also=$(cd "$scratch" && for f in * .[!.]*; do [ -e "$f" ] && [ "$f" != scaleout ] && printf '"%s", ' "$f"; done)
# shellcheck disable=SC2086 # word splitting of the test list and the extra arguments is wanted
selection=$(printf '"%s", ' $tests ${MUTATION_PYTEST_ARGS:-})
cat >>"$scratch/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["scaleout/"]
only_mutate = [${only%, }]
also_copy = [${also%, }]
# the fast tests: SCALEOUT_TESTS=fast leaves out every test that needs the engine or the browser
pytest_add_cli_args_test_selection = [${selection%, }]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]
EOF

log "mutating ${files[*]} (scratch copy $scratch)"
start=$(date +%s)
(
  cd "$scratch"
  export SCALEOUT_TESTS=fast PYTHONDONTWRITEBYTECODE=1
  unset CI
  "$python" -m mutmut run --max-children "${MUTATION_JOBS:-2}" >mutmut-run.log 2>&1 || {
    tail -40 mutmut-run.log >&2; log "mutmut run failed"; exit 2; }
  "$python" -m mutmut export-cicd-stats >/dev/null 2>&1 || true
  "$python" -m mutmut results --all true >results.txt 2>&1
)
elapsed=$(( $(date +%s) - start ))

mkdir -p "$root/.mutation"
report="$root/.mutation/report.txt"
rc=0
MUTATION_SELECTION="$tests ${MUTATION_PYTEST_ARGS:-}" \
  "$python" - "$scratch" "$elapsed" "$ci" "${MUTATION_FLOOR:-90}" "$@" >"$report" <<'PY' || rc=$?
import os, re, subprocess, sys
from collections import Counter, defaultdict
from pathlib import Path

scratch, elapsed, ci, floor, modules = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", float(sys.argv[4]), sys.argv[5:]
rows = re.findall(r"^\s*([\w.]+__mutmut_\d+): (.+)$", (scratch / "results.txt").read_text(), re.M)
by_module: dict[str, Counter] = defaultdict(Counter)
survivors: dict[str, list[str]] = defaultdict(list)
for name, status in rows:
    mod = next((m for m in sorted(modules, key=len, reverse=True) if name.startswith(m + ".")), "?")
    by_module[mod][status.strip()] += 1
    if status.strip() not in ("killed", "timeout", "segfault"):
        survivors[mod].append(name)
print(f"mutation testing (mutmut): {', '.join(modules)} against {os.environ['MUTATION_SELECTION'].strip()} "
      f"with SCALEOUT_TESTS=fast ({elapsed} s)\n")
print(f"{'module':<28} {'mutants':>7} {'killed':>7} {'survived':>8} {'other':>6} {'kill ratio':>10}")
failed = False
for mod in modules:
    c = by_module.get(mod, Counter())
    total = sum(c.values())
    killed = c["killed"] + c["timeout"] + c["segfault"]
    survived = c["survived"]
    ratio = 100.0 * killed / total if total else 0.0
    print(f"{mod:<28} {total:>7} {killed:>7} {survived:>8} {total - killed - survived:>6} {ratio:>9.1f}%")
    if ci and ratio < floor:
        failed = True
other = {k: v for m in modules for k, v in by_module.get(m, Counter()).items() if k not in ("killed", "survived")}
if other:
    print(f"\nother outcomes (not killed): {other}")
for mod in modules:
    for name in survivors.get(mod, []):
        r = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=scratch, capture_output=True, text=True)
        print(f"\n--- surviving: {name}\n{r.stdout.strip()}")
if ci:
    print(f"\n--ci: kill ratio floor {floor:g}%: {'FAILED' if failed else 'ok'}")
sys.exit(1 if failed else 0)
PY
cat "$report"
exit $rc
