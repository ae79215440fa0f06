#!/usr/bin/env bash
# Runs bench/jmeter/edge.jmx in non-GUI mode and prints, per phase, the request count,
# errors and latency percentiles (ms) from the results file.
#   bench/jmeter/run.sh -Jedge_port=8080 -Jorigin_port=8000 -Jpath=/simple/ [-Jthreads=16 -Jduration=20]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${JMETER_RESULTS:-$(mktemp /tmp/slabfront-jmeter.XXXXXX.jtl)}"
command -v jmeter >/dev/null || { echo "needs jmeter (Debian: apt-get install -y jmeter)" >&2; exit 1; }
jmeter -n -t "$here/edge.jmx" -l "$out" \
  -Jjmeter.save.saveservice.output_format=csv \
  -Jjmeter.save.saveservice.print_field_names=true "$@" >&2
echo "results: $out" >&2
# CSV columns: timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,...
awk -F, 'NR > 1 { n[$3]++; if ($8 != "true") err[$3]++; print $3 "\t" $2 }' "$out" \
  | sort -t$'\t' -k1,1 -k2,2n \
  | awk -F'\t' '
      { v[$1, ++c[$1]] = $2; s[$1] += $2 }
      END {
        printf "| phase | requests | mean ms | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|---|\n"
        for (k in c) {
          n = c[k]
          printf "| %s | %d | %.1f | %d | %d | %d |\n", k, n, s[k] / n, v[k, int(n * 0.5) + (n * 0.5 > int(n * 0.5))], v[k, int(n * 0.9) + (n * 0.9 > int(n * 0.9))], v[k, int(n * 0.99) + (n * 0.99 > int(n * 0.99))]
        }
      }' | sort
grep -c ',false,' "$out" | xargs -I{} echo "failed samples: {}" >&2 || true
