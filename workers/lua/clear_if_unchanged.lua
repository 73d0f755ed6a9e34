-- Remove a job from the recorder's dirty set only if no newer event marked it
-- since the recorder read it.
--
-- KEYS: dirty
-- ARGV: member (the job id), the score the recorder read (the job's last seq then)
-- Returns 1 if removed, else 0.

local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
