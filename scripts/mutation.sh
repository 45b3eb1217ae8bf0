#!/usr/bin/env bash
# Mutation testing of the modules that decide truth, against the fast (engine-free) tests: mutmut changes
# one operator, constant or call at a time, and a mutant that no test notices is a rule nobody checks.
#
#   scripts/mutation.sh [--ci | --all | MODULE ...]     no MODULE (or --all): every truth module below
#
# Each module is mutated against its own tests (the table; a module not in it: every fast test, tests/),
# in its own scratch copy of this checkout (mutmut rewrites the files it mutates), so the work tree is
# never touched. It prints per module: mutants, killed, survived, the kill ratio, and each surviving mutant
# as a diff; the same report goes to .mutation/report.txt. --ci mutates scaleout.probe.verdict only, against the
# probe's own fast tests (quick enough for CI), and exits 1 when its kill ratio is under MUTATION_FLOOR
# percent (default 90).
# MUTATION_TESTS: the tests to run, for every module named (instead of the table); MUTATION_PYTEST_ARGS:
# more pytest arguments (e.g. --deselect ...); MUTATION_JOBS: parallel mutants (default 2); MUTATION_KEEP=1
# keeps the scratch copies (to look at a mutant with `mutmut show NAME` there); MUTATION_NAMES: only the
# mutants whose names match these globs (e.g. 'scaleout.config.model.x__lifted_*'); the others count as not run.
# mutmut never mutates a decorated function (validators, properties, context managers): in the scratch
# copy, scripts/mutation_lift.py first moves their bodies into plain functions, so they are mutated too.
# Needs mutmut 3 (`pip install -e '.[test]'` installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3

log() { echo "mutation.sh: $*" >&2; }

# module -> the engine-free tests that exercise it (per mutant, mutmut runs only those that call the
# mutated function in the test process)
# CLI tests that run scaleout in a subprocess are left out: mutmut cannot tell which function they reach, so
# it never picks them for a mutant, and under load their timeouts fail the statistics run.
hostile="tests/unit/config/test_hostile.py::test_random_text_gives_a_config_or_a_config_error
  tests/unit/config/test_hostile.py::test_random_bytes_in_both_files_give_a_config_or_a_config_error"
config_tests="tests/unit/config/test_model.py tests/unit/config/test_load.py tests/unit/config/test_interpolation.py
  tests/unit/config/test_services.py tests/unit/config/test_yamlload.py tests/unit/render/test_nginx.py $hostile"
declare -A TESTS=(
  [scaleout.probe.verdict]="tests/unit/probe/test_verdict.py tests/unit/probe/test_project.py tests/unit/probe/test_stats.py"
  [scaleout.probe.stats]="tests/unit/probe/test_stats.py tests/unit/probe/test_verdict.py tests/unit/probe/test_project.py"
  [scaleout.config.model]="$config_tests"
  [scaleout.config.sections]="$config_tests"
  [scaleout.config.load]="$config_tests"
  [scaleout.config.services]="tests/unit/config/test_services.py tests/unit/config/test_model.py"
  [scaleout.config.yamlload]="tests/unit/config/test_yamlload.py tests/unit/config/test_model.py
    tests/unit/config/test_yamlload_loaders.py $hostile"
  [scaleout.render.nginx]="tests/unit/render/test_nginx.py tests/unit/render/test_golden.py tests/unit/render/test_websocket.py"
  [scaleout.files]="tests/unit/test_files.py tests/unit/test_files_safety.py tests/unit/render/test_golden.py"
)
ALL=(scaleout.probe.verdict scaleout.probe.stats scaleout.config.model scaleout.config.sections scaleout.config.load scaleout.config.services scaleout.config.yamlload scaleout.render.nginx
  scaleout.files)

ci=0
if [ "${1:-}" = "--ci" ]; then
  ci=1
  shift
  set -- scaleout.probe.verdict
fi
[ "${1:-}" = "--all" ] && shift
[ $# -gt 0 ] || set -- "${ALL[@]}"

"$python" -c 'import mutmut' 2>/dev/null || { log "mutmut is missing: pip install -e '.[test]'"; exit 2; }

module_file() {
  local rel=${1//.//}
  if [ -f "$rel.py" ]; then echo "$rel.py"
  elif [ -f "$rel/__init__.py" ]; then echo "$rel/__init__.py"
  else log "no module $1 (looked for $rel.py and $rel/__init__.py)"; return 1
  fi
}
for mod in "$@"; do module_file "$mod" >/dev/null || exit 2; done

work=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-mutation.XXXXXX")
if [ -n "${MUTATION_KEEP:-}" ]; then log "scratch copies kept in $work (mutmut show/run there)"
else trap 'rm -rf "$work"' EXIT
fi

# mutate_one MODULE: one mutmut run in a scratch copy of its own, $work/MODULE, where its results stay
mutate_one() {
  local mod=$1 file scratch="$work/$1" t tests kept=() also selection start
  file=$(module_file "$mod")
  for t in ${MUTATION_TESTS:-${TESTS[$mod]:-tests/}}; do
    [ -e "${t%%::*}" ] && kept+=("$t")
  done
  tests="${kept[*]}"
  mkdir -p "$scratch"
  # the checkout as it is now (committed or not), without what git ignores
  git ls-files -z --cached --others --exclude-standard |
    tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$scratch"
  "$python" scripts/mutation_lift.py "$scratch/$file"
  echo "$tests ${MUTATION_PYTEST_ARGS:-}" >"$scratch/selection.txt"

  # A test that runs the CLI in a subprocess runs the mutants too, but cannot report to mutmut's coverage
  # statistics (they live in the test process; the subprocess would fail looking for mutmut's settings):
  # while mutmut collects them, such a subprocess runs the original code.
  cat >"$scratch/sitecustomize.py" <<'PY'
import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
PY

  # mutmut runs the tests in scratch/mutants/: everything beside the package goes there too (examples ...)
  also=$(cd "$scratch" && for f in * .[!.]*; do [ -e "$f" ] && [ "$f" != scaleout ] && printf '"%s", ' "$f"; done)
  # shellcheck disable=SC2086 # word splitting of the test list and the extra arguments is wanted
  selection=$(printf '"%s", ' $tests ${MUTATION_PYTEST_ARGS:-})
  cat >>"$scratch/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["scaleout/"]
only_mutate = ["$file"]
also_copy = [${also%, }]
# the fast tests: SCALEOUT_TESTS=fast leaves out every test that needs the engine or the browser
pytest_add_cli_args_test_selection = [${selection%, }]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]
TOML

  log "mutating $file against $tests"
  start=$(date +%s)
  (
    cd "$scratch"
    export SCALEOUT_TESTS=fast PYTHONDONTWRITEBYTECODE=1
    unset CI
    set -f  # MUTATION_NAMES holds globs for mutmut, not for the shell
    # shellcheck disable=SC2086 # one glob per word
    "$python" -m mutmut run --max-children "${MUTATION_JOBS:-2}" ${MUTATION_NAMES:-} >mutmut-run.log 2>&1 || {
      tail -40 mutmut-run.log >&2; log "mutmut run failed ($mod)"; exit 2; }
    "$python" -m mutmut results --all true >results.txt 2>&1
  )
  echo $(($(date +%s) - start)) >"$scratch/elapsed.txt"
}

for mod in "$@"; do
  mutate_one "$mod"
done

mkdir -p "$root/.mutation"
report="$root/.mutation/report.txt"
rc=0
"$python" - "$work" "$ci" "${MUTATION_FLOOR:-90}" "$@" >"$report" <<'PY' || rc=$?
import re, subprocess, sys
from collections import Counter
from pathlib import Path

work, ci, floor, modules = Path(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3]), sys.argv[4:]
KILLED = ("killed", "timeout", "segfault")
counts: dict[str, Counter] = {}
survivors: dict[str, list[str]] = {}
print("mutation testing (mutmut), SCALEOUT_TESTS=fast; each module against its own tests:")
for mod in modules:
    scratch = work / mod
    rows = re.findall(r"^\s*([\w.ǁ]+__mutmut_\d+): (.+)$", (scratch / "results.txt").read_text(), re.M)
    counts[mod] = Counter(status.strip() for _, status in rows)
    survivors[mod] = [name for name, status in rows if status.strip() not in (*KILLED, "not checked")]
    print(f"  {mod} ({(scratch / 'elapsed.txt').read_text().strip()} s): {(scratch / 'selection.txt').read_text().strip()}")
print(f"\n{'module':<24} {'mutants':>7} {'not run':>7} {'killed':>7} {'survived':>8} {'other':>5} {'kill ratio':>10}")
failed = False
for mod in modules:
    c = counts[mod]
    total = sum(c.values())
    skipped = c["not checked"]
    killed = sum(c[k] for k in KILLED)
    survived = c["survived"]
    ratio = 100.0 * killed / (total - skipped) if total > skipped else 0.0
    print(f"{mod:<24} {total:>7} {skipped:>7} {killed:>7} {survived:>8} {total - skipped - killed - survived:>5} "
          f"{ratio:>9.1f}%")
    if ci and ratio < floor:
        failed = True
    other = {k: v for k, v in c.items() if k not in KILLED and k not in ("survived", "not checked")}
    if other:
        print(f"{'':<24} other outcomes (not killed): {other}")
print("\nkill ratio = killed (or timed out) / mutants run; 'other' (no test reaches it, ...) counts as not killed")
for mod in modules:
    for name in survivors[mod]:
        r = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work / mod, capture_output=True,
                           text=True)
        print(f"\n--- not killed: {name}\n{r.stdout.strip()}")
if ci:
    print(f"\n--ci: kill ratio floor {floor:g}%: {'FAILED' if failed else 'ok'}")
sys.exit(1 if failed else 0)
PY
cat "$report"
exit $rc
