-- One worker heartbeat: its time (Redis' clock, so hosts with skewed clocks
-- agree), its payload, and a PUBLISH on the workers channel.
--
-- KEYS: beats, info, offline, expired
-- ARGV: hostname, payload, channel, going offline ("1"/"0")
-- Returns 1.

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[3], ARGV[1], now)
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
