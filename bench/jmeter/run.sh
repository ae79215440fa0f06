#!/usr/bin/env bash
# Runs bench/jmeter/edge.jmx in non-GUI mode and prints, per phase, the request count,
# errors and latency percentiles (ms) from the results file.
#   bench/jmeter/run.sh -Jedge_port=8080 -Jorigin_port=8000 -Jpath=/simple/ [-Jthreads=16 -Jduration=20]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${JMETER_RESULTS:-$(mktemp /tmp/slabfront-jmeter.XXXXXX.jtl)}"
command -v jmeter >/dev/null || { echo "needs jmeter (Debian: apt-get install -y jmeter default-jdk-headless)" >&2; exit 1; }
props=(-Jjmeter.save.saveservice.output_format=csv -Jjmeter.save.saveservice.print_field_names=true)
deb=/usr/share/jmeter
if [[ -f $deb/bin/ApacheJMeter.jar && -f /usr/share/java/xstream.jar ]] && command -v javac >/dev/null; then
  # Debian's JMeter 2.13 with XStream 1.4.20 refuses to load any plan: start it through a
  # launcher that allows JMeter's classes (see SlabfrontJMeter.java).
  cp="$deb/bin/ApacheJMeter.jar:$deb/lib/ext/*:$deb/lib/*:/usr/share/java/xstream.jar"
  classes="$(mktemp -d /tmp/slabfront-jmeter-launcher.XXXXXX)"
  javac -d "$classes" -cp "$cp" "$here/SlabfrontJMeter.java"
  java -cp "$cp:$classes" -Djmeter.home="$deb" SlabfrontJMeter -n -t "$here/edge.jmx" -l "$out" "${props[@]}" "$@" >&2
  rm -rf "$classes"
else
  jmeter -n -t "$here/edge.jmx" -l "$out" "${props[@]}" "$@" >&2
fi
echo "results: $out" >&2
# CSV columns: timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,...
printf '| phase | requests | mean ms | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|---|\n'
awk -F, 'NR > 1 { n[$3]++; if ($8 != "true") err[$3]++; print $3 "\t" $2 }' "$out" \
  | sort -t$'\t' -k1,1 -k2,2n \
  | awk -F'\t' '
      { v[$1, ++c[$1]] = $2; s[$1] += $2 }
      END {
        for (k in c) {
          n = c[k]
          printf "| %s | %d | %.1f | %d | %d | %d |\n", k, n, s[k] / n, v[k, int(n * 0.5) + (n * 0.5 > int(n * 0.5))], v[k, int(n * 0.9) + (n * 0.9 > int(n * 0.9))], v[k, int(n * 0.99) + (n * 0.99 > int(n * 0.99))]
        }
      }' | sort
grep -c ',false,' "$out" | xargs -I{} echo "failed samples: {}" >&2 || true
