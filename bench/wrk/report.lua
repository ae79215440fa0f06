-- wrk reporting script: prints one CSV line after the run
--   requests,req_per_s,mb_per_s,p50_ms,p90_ms,p99_ms,p999_ms,errors
-- Usage: wrk -t1 -c64 -d20s -s bench/wrk/report.lua http://127.0.0.1:8080/simple/
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("requests,req_per_s,mb_per_s,p50_ms,p90_ms,p99_ms,p999_ms,errors\n"))
  io.write(string.format("%d,%.0f,%.1f,%.3f,%.3f,%.3f,%.3f,%d\n",
    summary.requests, summary.requests / secs, summary.bytes / secs / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, errors))
end
