"""Lua scripts: each moves work between the job's keys in one atomic step, on Redis server time.

Every script takes the job's keys in one order (`KEYS`), FINISH the keys it may delete after
them. A lease is `inflight` (id -> expiry) plus `leases` (id -> JSON {k: kind, w: worker, s:
queue score, d: data}); kind "request" goes back to the queue, "seed" to the front of the seed list.
"""

from __future__ import annotations

# Redis server time as `now` (seconds), for the job-wide limit (limits/); the scripts here call `server_time()`.
LUA_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# The keys every script takes, by their JobKeys names and in this order (Job.script_keys).
KEYS = "requests inflight leases seeds stats workers marker seeds_seen dupefilter dupefilter_recent".split()

# What `Job._run` puts before every script: the keys by name and these helpers. `lost()` reads the
# job's marker (set when the job is first seeded) into `job_marker`: gone or another than ARGV[1],
# the one this worker saw ('': none yet), means the job's state was lost, and the script answers
# {'gone', job_marker}.
PRELUDE = "".join(f"local {name} = KEYS[{i}]\n" for i, name in enumerate(KEYS, 1)) + (
    """
local job_marker
local function lost()
  job_marker = redis.call('GET', marker) or ''
  return ARGV[1] ~= '' and job_marker ~= ARGV[1]
end
local function server_time()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function give_back(ids)
  local n = 0
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', leases, id)
    if raw then
      local lease = cjson.decode(raw)
      if lease.k == 'seed' then
        redis.call('LPUSH', seeds, lease.d)
      else
        redis.call('ZADD', requests, lease.s, lease.d)
      end
      n = n + 1
    end
    redis.call('ZREM', inflight, id)
    redis.call('HDEL', leases, id)
  end
  return n
end
"""
)


# ARGV: marker id seen, data, score, handover lease id or '', fingerprint or '', dupefilter ttl
# seconds (0: keep every fingerprint).
# Queues a request unless the duplicate filter has its fingerprint, and acknowledges the lease it
# replaces either way, in one step (a kill between them would lose the request). With a ttl the
# filter is a zset by time added, and each call drops up to 16 expired ones. {'ok', marker, queued}.
PUSH_REQUEST = """
if lost() then return {'gone', job_marker} end
local queued = 1
local ttl = tonumber(ARGV[6])
if ARGV[5] ~= '' and ttl > 0 then
  local now = server_time()
  local old = redis.call('ZRANGEBYSCORE', dupefilter_recent, '-inf', now - ttl, 'LIMIT', 0, 16)
  if #old > 0 then redis.call('ZREM', dupefilter_recent, unpack(old)) end
  local added = redis.call('ZSCORE', dupefilter_recent, ARGV[5])
  if added and tonumber(added) > now - ttl then
    queued = 0
  else
    redis.call('ZADD', dupefilter_recent, now, ARGV[5])
  end
elseif ARGV[5] ~= '' and redis.call('SADD', dupefilter, ARGV[5]) == 0 then
  queued = 0
end
if queued == 1 then
  redis.call('ZADD', requests, tonumber(ARGV[3]), ARGV[2])
end
if ARGV[4] ~= '' then
  redis.call('ZREM', inflight, ARGV[4])
  redis.call('HDEL', leases, ARGV[4])
end
return {'ok', job_marker, queued}
"""

# ARGV: marker id seen, worker, lease seconds, lease id ('': acknowledge only), number of done
# lease ids n, id1..idn, name1, value1, ...
# Acknowledges the done leases (500 to a ZREM and HDEL) and adds the counters' deltas (one HMGET
# and one HSET for all of them, whose number grows with the workers), then pops the highest-priority
# request into a lease: {'ok', marker, id, data}, or {'ok', marker} when none was asked for or none
# is queued.
# Lease ids come from the worker: an INCR here could repeat after a failover to a lagging replica.
POP_REQUEST = """
if lost() then return {'gone', job_marker} end
local n = tonumber(ARGV[5])
for i = 6, 5 + n, 500 do
  local last = math.min(5 + n, i + 499)
  redis.call('ZREM', inflight, unpack(ARGV, i, last))
  redis.call('HDEL', leases, unpack(ARGV, i, last))
end
local names = {}
for i = 6 + n, #ARGV, 2 do names[#names + 1] = ARGV[i] end
if #names == 1 then
  redis.call('HINCRBY', stats, names[1], tonumber(ARGV[#ARGV]))
elseif #names > 1 then
  local old, new = redis.call('HMGET', stats, unpack(names)), {}
  for j, name in ipairs(names) do
    new[#new + 1] = name
    new[#new + 1] = string.format('%d', (tonumber(old[j]) or 0) + tonumber(ARGV[5 + n + 2 * j]))
  end
  redis.call('HSET', stats, unpack(new))
end
if ARGV[4] == '' then return {'ok', job_marker} end
local top = redis.call('ZPOPMIN', requests)
if #top == 0 then return {'ok', job_marker} end
local id = ARGV[4]
redis.call('ZADD', inflight, server_time() + tonumber(ARGV[3]), id)
redis.call('HSET', leases, id, cjson.encode({k = 'request', w = ARGV[2], s = tonumber(top[2]), d = top[1]}))
return {'ok', job_marker, id, top[1]}
"""

# ARGV: marker id seen, worker, lease seconds, count, lease id prefix, first number. Pops up to
# `count` seeds into leases: {'ok', marker, work left, id1, seed1, ...}. Work left is what the
# seed loop asks ("drained?"): 0 only when no seed, request or lease is left, else a lower bound.
# Seeds taken are leases now, so a look that took some counts nothing more; one that took none
# counts the queue, then the leases only while the queue is empty.
POP_SEEDS = """
if lost() then return {'gone', job_marker} end
local out = {'ok', job_marker, 0}
local left = redis.call('LLEN', seeds)
local n = math.min(left, tonumber(ARGV[4]))
local expiry = n > 0 and server_time() + tonumber(ARGV[3])  -- an empty look asks for no TIME
for i = 1, n do
  local seed = redis.call('LPOP', seeds)
  local id = ARGV[5] .. tostring(tonumber(ARGV[6]) + i - 1)
  redis.call('ZADD', inflight, expiry, id)
  redis.call('HSET', leases, id, cjson.encode({k = 'seed', w = ARGV[2], s = 0, d = seed}))
  out[#out + 1] = id
  out[#out + 1] = seed
end
if left == 0 then left = redis.call('ZCARD', requests) end
if left == 0 then left = redis.call('ZCARD', inflight) end
out[3] = left
return out
"""

# ARGV: a new marker id, then the seeds as one text: a line "<fingerprint> <seed JSON>\n" each.
# Sets the marker if unset and pushes the seeds not seen before, a thousand to an RPUSH: returns
# how many were new.
PUSH_SEEDS = """
redis.call('SET', marker, ARGV[1], 'NX')
local pushed, new = 0, {}
local function push()
  redis.call('RPUSH', seeds, unpack(new))
  pushed, new = pushed + #new, {}
end
for fp, seed in string.gmatch(ARGV[2], '(%x+) ([^\\n]*)\\n') do
  if redis.call('SADD', seeds_seen, fp) == 1 then
    new[#new + 1] = seed
    if #new == 1000 then push() end
  end
end
if #new > 0 then push() end
if pushed > 0 then redis.call('HINCRBY', stats, 'seeds_pushed', pushed) end
return pushed
"""

# ARGV: marker id seen, worker, lease seconds, max count, id1, id2, ...
# Extends this worker's leases (only those still in flight: XX, 500 to a ZADD) and marks it
# alive, then gives up to `max count` expired leases back to the job: {'ok', marker, given back}.
HEARTBEAT = """
local now = server_time()
if lost() then return {'gone', job_marker} end
for i = 5, #ARGV, 500 do
  local args = {'XX'}
  for j = i, math.min(#ARGV, i + 499) do
    args[#args + 1] = now + tonumber(ARGV[3])
    args[#args + 1] = ARGV[j]
  end
  redis.call('ZADD', inflight, unpack(args))
end
redis.call('ZADD', workers, now, ARGV[2])
local n = give_back(redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4])))
if n > 0 then redis.call('HINCRBY', stats, 'leases_expired', n) end
return {'ok', job_marker, n}
"""

# ARGV: id1, id2, ... A closing worker gives back what it took and did not finish.
GIVE_BACK = "return give_back(ARGV)\n"

# KEYS: the job's, then its work keys; ARGV: worker, live seconds, delete(0/1), seconds to keep
# the stats hash (and the marker) of a finished job.
# The last live worker of a drained job removes its work keys; any other leaves them.
FINISH = """
local now = server_time()
redis.call('ZREM', workers, ARGV[1])
local live = redis.call('ZCOUNT', workers, now - tonumber(ARGV[2]), '+inf')
local left = redis.call('LLEN', seeds) + redis.call('ZCARD', requests) + redis.call('ZCARD', inflight)
if live > 0 or left > 0 then return 0 end
if ARGV[3] == '1' then
  for i = 11, #KEYS do redis.call('DEL', KEYS[i]) end  -- the work keys, after the job's ten
  redis.call('DEL', workers)
  redis.call('HSET', stats, 'finished_at', math.floor(now))
  if tonumber(ARGV[4]) > 0 then
    redis.call('EXPIRE', stats, tonumber(ARGV[4]))
    redis.call('EXPIRE', marker, tonumber(ARGV[4]))
  end
  return 2
end
return 1
"""

# ARGV: live seconds. The job's status for `scrapy job`, read in one atomic step with Redis server time.
STATUS = """
return {
  redis.call('LLEN', seeds), redis.call('SCARD', seeds_seen), redis.call('ZCARD', requests),
  redis.call('ZCARD', inflight),
  redis.call('ZRANGEBYSCORE', workers, tostring(server_time() - tonumber(ARGV[1])), '+inf'),
  redis.call('HGETALL', stats)
}
"""
