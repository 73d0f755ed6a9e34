-- Read jobs' replay logs after a seq each, and their heads, each at one instant.
--
-- KEYS: log, ... (one or more jobs' logs)
-- ARGV: since, ... (one for each key, in order)
-- Returns, for each key, {head, index of the first entry returned, entries from
-- that index on} ({0, 0, {}} for a job with no log). An entry whose seq cannot be
-- read is an error: the caller cannot place it.
-- Given by workers/lua: SEQ_PATTERN (an envelope's seq, from workers/envelope.py).
--
-- A log holds seqs head-len+1 .. head, so the index of `since + 1` is found
-- without reading the entries before it.

local out = {}
for i, key in ipairs(KEYS) do
  local tip = redis.call('LINDEX', key, -1)
  if not tip then
    out[i] = {0, 0, {}}
  else
    local head = tonumber(string.match(tip, SEQ_PATTERN))
    local start = tonumber(ARGV[i]) - (head - redis.call('LLEN', key))
    if start < 0 then start = 0 end
    out[i] = {head, start, redis.call('LRANGE', key, start, -1)}
  end
end
return out
