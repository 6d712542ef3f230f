//! The Lua scripts the hot store runs: each is one atomic step of Redis
//! that a round trip per check would race.

/// Fenced write of one session: commands, then the snapshot, then TTLs
/// (with neither, it only raises the stored epoch: see `HotStore::adopt`).
/// Refuses (code 0, stored epoch) a writer older than the stored epoch, and
/// (code 2, last tick) commands or a snapshot older than what this epoch
/// already wrote, before changing anything. Stream ids are
/// `<tick>-<n>` with `n` from 1 (Redis refuses `0-0`).
///
/// A retried write must not append its commands twice (a pipeline cut
/// mid-way may or may not have run): a writer that numbers its commands
/// passes the number of the first one, the script remembers (`cepoch`,
/// `cseq` in the snapshot hash) how many this epoch has written, and skips
/// the ones already there. An empty number writes every command.
///
/// KEYS: epoch, snap, cmds. ARGV: epoch, ttl_ms, maxlen, has_snap (`1`/`0`),
/// snap tick, snap hash, snap bytes, first command number (or empty), then
/// (tick, bytes) per command.
pub(super) const WRITE_SCRIPT: &str = r"
local epoch = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > epoch then return {0, tostring(current)} end
local ttl = ARGV[2]
local first = 9
local numbered = ARGV[8] ~= '' and #ARGV > 8
local written = -1
if numbered then
  local done = redis.call('HMGET', KEYS[2], 'cepoch', 'cseq')
  if done[1] and tonumber(done[1]) == epoch then
    written = tonumber(done[2])
    local skip = written - tonumber(ARGV[8])
    if skip > 0 then first = 9 + 2 * skip end
  end
end
local last_tick, last_seq = -1, 0
if #ARGV >= first then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[3])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local id = info[i + 1]
        local dash = string.find(id, '-', 1, true)
        last_tick = tonumber(string.sub(id, 1, dash - 1))
        last_seq = tonumber(string.sub(id, dash + 1))
      end
    end
  end
  local prev = last_tick
  for i = first, #ARGV, 2 do
    local t = tonumber(ARGV[i])
    if t < prev then return {2, tostring(prev)} end
    prev = t
  end
end
if ARGV[4] == '1' then
  local stored = redis.call('HMGET', KEYS[2], 'epoch', 'tick')
  if stored[1] and tonumber(stored[1]) == epoch and tonumber(stored[2]) > tonumber(ARGV[5]) then
    return {2, stored[2]}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = first, #ARGV, 2 do
  local t = tonumber(ARGV[i])
  if t == last_tick then last_seq = last_seq + 1 else last_tick = t; last_seq = 1 end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], ARGV[i] .. '-' .. last_seq, 'c', ARGV[i + 1])
end
if numbered then
  local total = tonumber(ARGV[8]) + (#ARGV - 8) / 2
  if total > written then
    redis.call('HSET', KEYS[2], 'cepoch', ARGV[1], 'cseq', string.format('%d', total))
  end
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'tick', ARGV[5], 'hash', ARGV[6], 'data', ARGV[7])
  redis.call('XTRIM', KEYS[3], 'MINID', ARGV[5] .. '-0')
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return {1, ARGV[1]}
";

/// Extends the lease only while we hold it.
pub(super) const RENEW_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the lease only while we hold it.
pub(super) const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Stores one form of a cached record and starts the record's time to live
/// only when it has none, so a form added later does not extend the life of
/// the others: every form is at most one TTL old. (`PEXPIRE ... NX` would do
/// in one command, but needs Redis 7.)
///
/// KEYS: the record. ARGV: form, bytes, ttl_ms.
pub(super) const CACHE_SCRIPT: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
";
