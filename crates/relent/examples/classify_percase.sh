#!/bin/sh
# Instructions per corpus case, classifier and floor, counted by callgrind one case at a time
# (see the module docs of classify_cpu.rs). Prints the median and the mean over the cases and
# their ratios. Usage: classify_percase.sh [BINARY] [REPS]
set -eu
bin=${1:-target/release/examples/classify_cpu}
reps=${2:-10}
dir=$(mktemp -d)
for mode in classify floor; do
    valgrind --tool=callgrind --toggle-collect='classify_cpu::measure_case' \
        --dump-after='classify_cpu::measure_case' \
        --callgrind-out-file="$dir/$mode.out" "$bin" percase "$mode" "$reps" >/dev/null 2>&1
    n=1
    while [ -f "$dir/$mode.out.$n" ]; do
        sed -n 's/^totals: //p' "$dir/$mode.out.$n"
        n=$((n + 1))
    done >"$dir/$mode.counts"
done
paste "$dir/classify.counts" "$dir/floor.counts" | awk -v reps="$reps" '
    { c[NR] = $1 / reps; f[NR] = $2 / reps; r[NR] = c[NR] / f[NR]; sc += c[NR]; sf += f[NR] }
    function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        n = NR
        mc = median(c, n); mf = median(f, n); mr = median(r, n)
        printf "%d cases, %d runs each (instructions per run)\n", n, reps
        printf "classifier: median %.0f, mean %.0f\n", mc, sc / n
        printf "floor:      median %.0f, mean %.0f\n", mf, sf / n
        printf "ratio of medians %.2f, ratio of means %.2f, median of per-case ratios %.2f\n", mc / mf, sc / sf, mr
    }'
paste "$dir/classify.counts" "$dir/floor.counts" >"${PERCASE_OUT:-/dev/null}"
rm -rf "$dir"
