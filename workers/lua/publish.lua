-- Publish a batch of events, in order, in one atomic call: give each its job's
-- next seq and state, append it to its job's replay log, mark the jobs for the
-- recorder, PUBLISH the batch.
--
-- KEYS: dirty, metrics, epoch, receipt
-- ARGV: max_events, ttl, channel, epoch_candidate, the prefix of the log keys,
--       then the events in one argument: each event's fields joined by SEP,
--       each event ended by RS:
--       job, head, mid, new_state, tail, seq_floor, state_fallback
--       (head .. seq .. mid .. state .. tail is the envelope; a job's log key is
--       the prefix plus the job id; new_state "" keeps the job's state)
-- Returns seq .. SEP .. state per event, joined by RS.
-- Given by workers/lua: SEP, RS, SEQ_PATTERN and STATE_PATTERN (an envelope's
-- seq and state, from workers/envelope.py), INITIAL, FINAL, SUPERSEDED_BY (the
-- state rules, from workers/events.py).
--
-- All the events go in one argument, so the client packs one argument per
-- batch, not ten per event.
-- A job's one key is its replay log: its last entry holds the job's last seq and
-- state, so no counter or state key is kept beside it.
-- Every redis.call costs the server a few microseconds beyond the command's own
-- work, and this server is also the Celery broker: so a job costs one LINDEX,
-- one RPUSH (and, when new, one EXPIRE) per call, however many of its events the
-- batch holds (a short task's started and succeeded usually travel together);
-- one ZADD marks all the batch's jobs for the recorder and one PUBLISH carries
-- all its envelopes, one per line (JSON holds no raw newline).
-- The floor and fallback are what the publisher last saw of the job: if Redis
-- lost its data, the job's seq goes on from there instead of restarting at 1.
-- The receipt makes a retry idempotent: a call that timed out may still have
-- run (a paused Redis runs what was sent once it resumes), so the retry, under
-- the same receipt, gets the first run's seqs back for the events that run
-- published and publishes only the rest (a receipt lives 60 s; retries come
-- within seconds). The epoch gets the server's clock appended, so each data
-- loss gives a new one, even when the same process is the first to publish.

local out = {}
local receipt = redis.call('GET', KEYS[4])
if receipt then
  for item in string.gmatch(receipt, '[^' .. RS .. ']+') do out[#out + 1] = item end
end
local skip = #out
if redis.call('EXISTS', KEYS[3]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[3], ARGV[4] .. '-' .. t[1] .. '.' .. t[2])
end
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local prefix = ARGV[5]
-- A field never holds SEP or RS (JSON escapes them; emit refuses them
-- elsewhere). Plain finds (memchr), not patterns: a pattern tests each byte of
-- the ~300-byte envelopes in Lua's matcher.
local events, count, order = {}, {}, {}
local packed, pos, n = ARGV[6], 1, 0
while pos <= #packed do
  local e, stop = {}, string.find(packed, RS, pos, true)
  for i = 1, 6 do
    local cut = string.find(packed, SEP, pos, true)
    e[i] = string.sub(packed, pos, cut - 1)
    pos = cut + 1
  end
  e[7] = string.sub(packed, pos, stop - 1)
  pos = stop + 1
  n = n + 1
  if n > skip then
    events[#events + 1] = e
    local c = count[e[1]]
    if c then
      count[e[1]] = c + 1
    else
      count[e[1]] = 1
      order[#order + 1] = e[1]
    end
  end
end
local jobs, lines = {}, {}
for _, e in ipairs(events) do
  local j = jobs[e[1]]
  if not j then
    -- Only this script writes the log, in the envelope's one layout.
    local tip = redis.call('LINDEX', prefix .. e[1], -1)
    local last, cur = 0, nil
    if tip then
      last = tonumber(string.match(tip, SEQ_PATTERN))
      cur = string.match(tip, STATE_PATTERN)
    end
    local floor = tonumber(e[6])
    if last < floor then last = floor end
    if not cur and e[7] ~= '' then cur = e[7] end
    local first = last + 1
    j = {first = first, last = last + count[e[1]], nxt = first, new = not tip, cur = cur, log = {}}
    jobs[e[1]] = j
  end
  local seq = j.nxt
  j.nxt = seq + 1
  local cur, st = j.cur, e[4]
  if st == '' then
    st = cur or INITIAL
  elseif FINAL[cur] then
    st = cur
  else
    local later = SUPERSEDED_BY[st]
    if later and later[cur] then st = cur end
  end
  j.cur = st
  local ev = e[2] .. seq .. e[3] .. st .. e[5]
  j.log[#j.log + 1] = ev
  lines[#lines + 1] = ev
  out[#out + 1] = seq .. SEP .. st
end
local dirty = {}
for _, job in ipairs(order) do
  local j = jobs[job]
  local klog = prefix .. job
  if redis.call('RPUSH', klog, unpack(j.log)) > cap then
    redis.call('LTRIM', klog, -cap, -1)
  end
  -- a new log, and every 100 events of a long one, push the expiry on
  if j.new or math.floor(j.last / 100) > math.floor((j.first - 1) / 100) then
    redis.call('EXPIRE', klog, ttl)
  end
  dirty[#dirty + 1] = j.last
  dirty[#dirty + 1] = job
end
if #dirty > 0 then
  redis.call('ZADD', KEYS[1], unpack(dirty))
  redis.call('PUBLISH', ARGV[3], table.concat(lines, '\n'))
end
local joined = table.concat(out, RS)
redis.call('SET', KEYS[4], joined, 'EX', 60)
if n > skip then redis.call('HINCRBY', KEYS[2], 'events_published', n - skip) end
return joined
