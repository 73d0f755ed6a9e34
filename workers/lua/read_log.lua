-- Read a job's replay log after a seq, and its head, at one instant.
--
-- KEYS: log
-- ARGV: since
-- Returns {head, index of the first entry returned, entries from that index on}
-- ({0, 0, {}} for a job with no log). An entry whose seq cannot be read is an
-- error: the caller cannot place it.
-- Given by workers/lua: SEQ_PATTERN (an envelope's seq, from workers/envelope.py).
--
-- The log holds seqs head-len+1 .. head, so the index of `since + 1` is found
-- without reading the entries before it.

local tip = redis.call('LINDEX', KEYS[1], -1)
if not tip then return {0, 0, {}} end
local head = tonumber(string.match(tip, SEQ_PATTERN))
local start = tonumber(ARGV[1]) - (head - redis.call('LLEN', KEYS[1]))
if start < 0 then start = 0 end
return {head, start, redis.call('LRANGE', KEYS[1], start, -1)}
