-- Remove jobs from the recorder's dirty set, each only if no newer event marked it
-- since the recorder read it.
--
-- KEYS: dirty
-- ARGV: member, score, ... (a job id and the score the recorder read, its last seq
--       then; one pair for each job)
-- Returns how many were removed.

local removed = 0
for i = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
