-- Mark a worker whose beats stopped as offline, once, and say so on the workers
-- channel. Times are Redis' clock.
--
-- KEYS: beats, offline, expired
-- ARGV: host, max silence (s), channel, payload (its worker.offline)
-- Returns 1 if this call marked it, else 0 (still beating, said goodbye, or
-- already marked).

local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if now - tonumber(s) <= tonumber(ARGV[2]) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[3], ARGV[1], now) == 0 then return 0 end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
