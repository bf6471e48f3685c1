"""Lua scripts: each moves work between the job's keys in one atomic step, on Redis server time.

A lease is `inflight` (id -> expiry) plus `leases` (id -> JSON {k: kind, w: worker, s: queue
score, d: data}); kind "request" goes back to the queue, "seed" to the front of the seed list.
"""

from __future__ import annotations

# Redis server time as `now` (seconds): every script here and the job-wide limit (limits/) use it.
LUA_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# The job's marker (set when first seeded) against ARGV[1], the one this worker saw ('': none yet):
# gone or another means the job's state was lost, and the script answers {'gone', marker}.
_MARKER = """
local marker = redis.call('GET', KEYS_MARKER) or ''
if ARGV[1] ~= '' and marker ~= ARGV[1] then return {'gone', marker} end
"""

# Acknowledges the lease ids ARGV[first..first+n-1] (500 to a ZREM and HDEL) and adds the counter
# deltas after them (name, value, ...) with one HMGET and one HSET.
_ACK = """
local function ack(first)
  local n = tonumber(ARGV[first - 1])
  for i = first, first + n - 1, 500 do
    local last = math.min(first + n - 1, i + 499)
    redis.call('ZREM', KEYS_INFLIGHT, unpack(ARGV, i, last))
    redis.call('HDEL', KEYS_LEASES, unpack(ARGV, i, last))
  end
  local names = {}
  for i = first + n, #ARGV, 2 do names[#names + 1] = ARGV[i] end
  if #names == 1 then
    redis.call('HINCRBY', KEYS_STATS, names[1], tonumber(ARGV[#ARGV]))
  elseif #names > 1 then
    local old, new = redis.call('HMGET', KEYS_STATS, unpack(names)), {}
    for j, name in ipairs(names) do
      new[#new + 1] = name
      new[#new + 1] = string.format('%d', (tonumber(old[j]) or 0) + tonumber(ARGV[first + n + 2 * j - 1]))
    end
    redis.call('HSET', KEYS_STATS, unpack(new))
  end
end
"""

_GIVE_BACK = """
local function give_back(id)
  local raw = redis.call('HGET', KEYS_LEASES, id)
  if raw then
    local lease = cjson.decode(raw)
    if lease.k == 'seed' then
      redis.call('LPUSH', KEYS_SEEDS, lease.d)
    else
      redis.call('ZADD', KEYS_REQUESTS, lease.s, lease.d)
    end
  end
  redis.call('ZREM', KEYS_INFLIGHT, id)
  redis.call('HDEL', KEYS_LEASES, id)
  return raw and 1 or 0
end
"""

# KEYS: requests, inflight, leases, dupefilter, marker, dupefilter_recent; ARGV: marker id seen, data, score,
# handover lease id or '', fingerprint or '', dupefilter ttl seconds (0: keep every fingerprint)
# Queues a request unless the duplicate filter has its fingerprint, and acknowledges the lease it
# replaces either way, in one step (a kill between them would lose the request). With a ttl the
# filter is a zset by time added, and each call drops up to 16 expired ones. {'ok', marker, queued}.
PUSH_REQUEST = (
    "local KEYS_MARKER = KEYS[5]\n"
    + _MARKER
    + """
local queued = 1
local ttl = tonumber(ARGV[6] or '0') or 0
if ARGV[5] ~= '' and ttl > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local old = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now - ttl, 'LIMIT', 0, 16)
  if #old > 0 then redis.call('ZREM', KEYS[6], unpack(old)) end
  local added = redis.call('ZSCORE', KEYS[6], ARGV[5])
  if added and tonumber(added) > now - ttl then
    queued = 0
  else
    redis.call('ZADD', KEYS[6], now, ARGV[5])
  end
elseif ARGV[5] ~= '' and redis.call('SADD', KEYS[4], ARGV[5]) == 0 then
  queued = 0
end
if queued == 1 then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[2])
end
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[3], ARGV[4])
end
return {'ok', marker, queued}
"""
)

# KEYS: requests, inflight, leases, marker, stats; ARGV: marker id seen, worker, lease seconds, lease id,
# number of done lease ids n, id1..idn, name1, value1, ...
# ACK's work, then the highest-priority request into a lease: {'ok', marker, id, data} or {'ok', marker}.
# Lease ids come from the worker: an INCR here could repeat after a failover to a lagging replica.
POP_REQUEST = (
    "local KEYS_MARKER, KEYS_INFLIGHT, KEYS_LEASES, KEYS_STATS = KEYS[4], KEYS[2], KEYS[3], KEYS[5]\n"
    + _MARKER
    + _ACK
    + """
ack(6)
local top = redis.call('ZPOPMIN', KEYS[1])
if #top == 0 then return {'ok', marker} end
"""
    + LUA_NOW
    + """
local id = ARGV[4]
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), id)
redis.call('HSET', KEYS[3], id, cjson.encode({k = 'request', w = ARGV[2], s = tonumber(top[2]), d = top[1]}))
return {'ok', marker, id, top[1]}
"""
)

# KEYS: seeds, inflight, leases, marker, requests; ARGV: marker id seen, worker, lease seconds, count,
# lease id prefix, first number. Pops up to `count` seeds into leases:
# {'ok', marker, work left (as DRAINED counts it), id1, seed1, id2, seed2, ...}.
POP_SEEDS = (
    "local KEYS_MARKER = KEYS[4]\n"
    + _MARKER
    + """
local out = {'ok', marker, 0}
local seeds = redis.call('LLEN', KEYS[1])
if seeds > 0 then
"""
    + LUA_NOW
    + """
  for i = 1, math.min(seeds, tonumber(ARGV[4])) do
    local seed = redis.call('LPOP', KEYS[1])
    local id = ARGV[5] .. tostring(tonumber(ARGV[6]) + i - 1)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), id)
    redis.call('HSET', KEYS[3], id, cjson.encode({k = 'seed', w = ARGV[2], s = 0, d = seed}))
    out[#out + 1] = id
    out[#out + 1] = seed
  end
  seeds = seeds - (#out - 3) / 2
end
out[3] = seeds + redis.call('ZCARD', KEYS[5]) + redis.call('ZCARD', KEYS[2])
return out
"""
)

# KEYS: seeds, seeds_seen, stats, marker; ARGV: a new marker id, then the seeds as one text:
# a line "<fingerprint> <seed JSON>\n" each. Sets the marker if unset and pushes the seeds not
# seen before, a thousand to an RPUSH: returns how many were new.
PUSH_SEEDS = """
redis.call('SET', KEYS[4], ARGV[1], 'NX')
local pushed, new = 0, {}
for fp, seed in string.gmatch(ARGV[2] or '', '(%x+) ([^\\n]*)\\n') do
  if redis.call('SADD', KEYS[2], fp) == 1 then
    new[#new + 1] = seed
    if #new == 1000 then
      redis.call('RPUSH', KEYS[1], unpack(new))
      pushed, new = pushed + #new, {}
    end
  end
end
if #new > 0 then
  redis.call('RPUSH', KEYS[1], unpack(new))
  pushed = pushed + #new
end
if pushed > 0 then redis.call('HINCRBY', KEYS[3], 'seeds_pushed', pushed) end
return pushed
"""

# Extends the leases ARGV[first..] (only those still in flight: XX), up to 500 with one ZADD.
_EXTEND = """
local function extend(first, seconds)
  for i = first, #ARGV, 500 do
    local args = {'XX'}
    for j = i, math.min(#ARGV, i + 499) do
      args[#args + 1] = now + seconds
      args[#args + 1] = ARGV[j]
    end
    redis.call('ZADD', KEYS_INFLIGHT, unpack(args))
  end
end
"""

# KEYS: inflight, workers, marker; ARGV: marker id seen, worker, lease seconds, id1, id2, ...
# Extends this worker's leases (only those still in flight) and marks it alive: {'ok', marker}.
RENEW = (
    LUA_NOW
    + "local KEYS_MARKER, KEYS_INFLIGHT = KEYS[3], KEYS[1]\n"
    + _MARKER
    + _EXTEND
    + """
extend(4, tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], now, ARGV[2])
return {'ok', marker}
"""
)

# KEYS: inflight, leases, stats, marker; ARGV: marker id seen, number of ids n, id1..idn, name1, value1, ...
# Acknowledges finished leases and adds the counters' deltas, in one step: {'ok', marker}.
ACK = (
    "local KEYS_MARKER, KEYS_INFLIGHT, KEYS_LEASES, KEYS_STATS = KEYS[4], KEYS[1], KEYS[2], KEYS[3]\n"
    + _MARKER
    + _ACK
    + """
ack(3)
return {'ok', marker}
"""
)

_REQUEUE = """
local function requeue(limit)
  local ids = redis.call('ZRANGEBYSCORE', KEYS_INFLIGHT, '-inf', now, 'LIMIT', 0, limit)
  local n = 0
  for _, id in ipairs(ids) do n = n + give_back(id) end
  if n > 0 then redis.call('HINCRBY', KEYS_STATS, 'leases_expired', n) end
  return n
end
"""

# KEYS: requests, inflight, leases, seeds, stats, workers, marker; ARGV: marker id seen, worker,
# lease seconds, max count, id1, id2, ...
# RENEW, then expired leases back to the job: {'ok', marker, leases given back}.
HEARTBEAT = (
    LUA_NOW
    + "local KEYS_REQUESTS, KEYS_INFLIGHT, KEYS_LEASES, KEYS_SEEDS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    + "local KEYS_STATS, KEYS_MARKER = KEYS[5], KEYS[7]\n"
    + _MARKER
    + _EXTEND
    + _GIVE_BACK
    + _REQUEUE
    + """
extend(5, tonumber(ARGV[3]))
redis.call('ZADD', KEYS[6], now, ARGV[2])
return {'ok', marker, requeue(tonumber(ARGV[4]))}
"""
)

# KEYS: requests, inflight, leases, seeds; ARGV: id1, id2, ...
# A closing worker gives back what it took and did not finish.
GIVE_BACK = (
    "local KEYS_REQUESTS, KEYS_INFLIGHT, KEYS_LEASES, KEYS_SEEDS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    + _GIVE_BACK
    + """
local n = 0
for _, id in ipairs(ARGV) do n = n + give_back(id) end
return n
"""
)

# KEYS: seeds, requests, inflight
# The job is drained when no seed, queued request or lease is left anywhere.
DRAINED = """
return redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
"""

# KEYS: workers, seeds, requests, inflight, stats, marker, <work keys...>; ARGV: worker, live seconds,
# delete(0/1), seconds to keep the stats hash (and the marker) of a finished job
# The last live worker of a drained job removes its work keys; any other leaves them.
FINISH = (
    LUA_NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
local live = redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[2]), '+inf')
local left = redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
if live > 0 or left > 0 then return 0 end
if ARGV[3] == '1' then
  for i = 7, #KEYS do redis.call('DEL', KEYS[i]) end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[5], 'finished_at', math.floor(now))
  if tonumber(ARGV[4]) > 0 then
    redis.call('EXPIRE', KEYS[5], tonumber(ARGV[4]))
    redis.call('EXPIRE', KEYS[6], tonumber(ARGV[4]))
  end
  return 2
end
return 1
"""
)

# KEYS: seeds, seeds_seen, requests, inflight, workers, stats; ARGV: live seconds
# The job's status for `scrapy job`, read in one atomic step with Redis server time.
STATUS = (
    LUA_NOW
    + """
return {
  redis.call('LLEN', KEYS[1]), redis.call('SCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  redis.call('ZRANGEBYSCORE', KEYS[5], tostring(now - tonumber(ARGV[1])), '+inf'),
  redis.call('HGETALL', KEYS[6])
}
"""
)
