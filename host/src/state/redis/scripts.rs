//! The Lua scripts: every read-modify-write of shared state is one of these, so it is atomic
//! on the Redis server whatever the number of gateway instances. Times and periods come from
//! the caller (wall clock in milliseconds, UTC day/month/minute numbers), so the scripts stay
//! deterministic and replicate as effects.

/// Take one request and `tokens` from a target's buckets, or say which limit would break.
/// KEYS[1] the target's quota hash. ARGV: now_ms, tokens, caps rpm rpd tpm tpd (0 = none),
/// ttl_s, force (1 = take even past a limit, for what was taken during an outage), requests
/// (how many requests `tokens` covers; 1 but when folding an outage in).
/// Returns {1, used_ppm or -1} or {0, limit index 1..4, wait_ms}.
pub const TAKE: &str = r#"
local h = KEYS[1]
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local force = ARGV[8] == '1'
local requests = tonumber(ARGV[9])
local names = {'rpm', 'rpd', 'tpm', 'tpd'}
local windows = {60000, 86400000, 60000, 86400000}
local amounts = {requests, requests, tokens, tokens}
local buckets = {}
local worst, worst_wait = 0, 0
for i = 1, 4 do
  local cap = tonumber(ARGV[2 + i])
  if cap > 0 then
    local stored = tonumber(redis.call('HGET', h, names[i] .. ':cap') or '-1')
    local level, at = cap, now
    if stored == cap then
      level = tonumber(redis.call('HGET', h, names[i] .. ':level'))
      at = tonumber(redis.call('HGET', h, names[i] .. ':at'))
    end
    local rate = cap / windows[i]
    if now > at then
      level = math.min(cap, level + (now - at) * rate)
      at = now
    end
    buckets[i] = {cap, level, at}
    if level < amounts[i] then
      local need = math.min(amounts[i], cap)
      local wait = (need - level) / rate
      if wait > worst_wait then
        worst, worst_wait = i, wait
      end
    end
  end
end
if worst > 0 and not force then
  return {0, worst, math.ceil(worst_wait)}
end
local used = -1
for i = 1, 4 do
  local b = buckets[i]
  if b then
    local level = math.min(b[1], b[2] - amounts[i])
    redis.call('HSET', h, names[i] .. ':cap', b[1], names[i] .. ':level', tostring(level),
      names[i] .. ':at', b[3])
    if i == 2 or i == 4 then
      used = math.max(used, 1 - level / b[1])
    end
  end
end
redis.call('EXPIRE', h, ARGV[7])
if used < 0 then return {1, -1} end
return {1, math.floor(used * 1000000)}
"#;

/// Correct a token estimate. KEYS[1] the quota hash; ARGV: delta (positive charges more).
pub const ADJUST: &str = r#"
local h = KEYS[1]
for _, n in ipairs({'tpm', 'tpd'}) do
  local cap = redis.call('HGET', h, n .. ':cap')
  if cap then
    local level = tonumber(redis.call('HGET', h, n .. ':level')) - tonumber(ARGV[1])
    level = math.min(level, tonumber(cap))
    redis.call('HSET', h, n .. ':level', tostring(level))
  end
end
return 1
"#;

/// Cool a target down. KEYS[1] the quota hash; ARGV: until_ms, mode ('set' replaces,
/// 'extend' keeps a later one), ttl_s.
pub const COOL: &str = r#"
local h = KEYS[1]
local until_ms = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', h, 'cool') or '0')
if ARGV[2] == 'set' or until_ms > current then
  redis.call('HSET', h, 'cool', until_ms)
end
redis.call('EXPIRE', h, ARGV[3])
return 1
"#;

/// What an upstream reported. KEYS[1] the quota hash; ARGV: remaining requests ('' = not
/// said), remaining tokens, exhausted-until ms (0 = none), ttl_s.
pub const REPORTED: &str = r#"
local h = KEYS[1]
if ARGV[1] ~= '' then redis.call('HSET', h, 'rem_req', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', h, 'rem_tok', ARGV[2]) end
local until_ms = tonumber(ARGV[3])
if until_ms > tonumber(redis.call('HGET', h, 'cool') or '0') then
  redis.call('HSET', h, 'cool', until_ms)
end
redis.call('EXPIRE', h, ARGV[4])
return 1
"#;

/// A key's counters when Redis has none (a fresh or flushed Redis, or a key idle past the
/// TTL): each field raised to what the ledger says was spent, unless another instance seeded
/// it first. ARGV: day, month, req_day, tok_day, usd_day, tok_month, usd_month, usd_total,
/// ttl_s. Returns 1 when it seeded, 0 when the key already was.
pub const SEED: &str = r#"
local h = KEYS[1]
if redis.call('HEXISTS', h, 'seeded') == 1 then return 0 end
local function num(f) return tonumber(redis.call('HGET', h, f) or '0') end
if redis.call('HGET', h, 'day') ~= ARGV[1] then
  redis.call('HSET', h, 'day', ARGV[1], 'req_day', 0, 'tok_day', 0, 'usd_day', 0)
end
if redis.call('HGET', h, 'month') ~= ARGV[2] then
  redis.call('HSET', h, 'month', ARGV[2], 'tok_month', 0, 'usd_month', 0)
end
local fields = {'req_day', 'tok_day', 'usd_day', 'tok_month', 'usd_month', 'usd_total'}
for i, f in ipairs(fields) do
  local seed = tonumber(ARGV[2 + i])
  if seed > num(f) then redis.call('HSET', h, f, tostring(seed)) end
end
redis.call('HSET', h, 'seeded', 1)
redis.call('EXPIRE', h, ARGV[9])
return 1
"#;

/// Shared by the key scripts (which answer -1, doing nothing, for a key not yet seeded from
/// the ledger): start a new day, month or minute where one has begun, and say
/// which budget `extra` more would overshoot (0 = none). ARGV[1..3]: day, month, minute;
/// ARGV[4..8]: daily_usd, monthly_usd, budget_usd, daily tokens (hard), monthly_tokens
/// (-1 = none).
const KEY_PRELUDE: &str = r#"
local h = KEYS[1]
if redis.call('HEXISTS', h, 'seeded') == 0 then return -1 end
local function num(f) return tonumber(redis.call('HGET', h, f) or '0') end
if redis.call('HGET', h, 'day') ~= ARGV[1] then
  redis.call('HSET', h, 'day', ARGV[1], 'req_day', 0, 'tok_day', 0, 'usd_day', 0)
end
if redis.call('HGET', h, 'month') ~= ARGV[2] then
  redis.call('HSET', h, 'month', ARGV[2], 'tok_month', 0, 'usd_month', 0)
end
if redis.call('HGET', h, 'minute') ~= ARGV[3] then
  redis.call('HSET', h, 'minute', ARGV[3], 'req_min', 0, 'tok_min', 0)
end
local function over(extra_tok, extra_usd)
  local held_tok, held_usd = num('held_tok'), num('held_usd')
  local function dollars(used) return used + held_usd + extra_usd end
  local function tok(used) return used + held_tok + extra_tok end
  local limits = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])}
  local spent = {num('usd_day'), num('usd_month'), num('usd_total')}
  for i = 1, 3 do
    if limits[i] >= 0 and dollars(spent[i]) > limits[i] + 1e-9 then return i end
  end
  if tonumber(ARGV[7]) >= 0 and tok(num('tok_day')) > tonumber(ARGV[7]) then return 4 end
  if tonumber(ARGV[8]) >= 0 and tok(num('tok_month')) > tonumber(ARGV[8]) then return 5 end
  return 0
end
"#;

/// Count one request. ARGV after the prelude's: [9] daily_requests, [10] daily tokens (soft
/// cap), [11] rpm, [12] tpm (-1 = none), [13] ttl_s. Returns 0, a budget index 1..5, or 10
/// daily requests, 11 daily tokens, 12 rpm, 13 tpm.
pub fn admit() -> String {
    format!(
        "{KEY_PRELUDE}{}",
        r#"
local function cap(i) return tonumber(ARGV[i]) end
local verdict = 0
if cap(9) >= 0 and num('req_day') >= cap(9) then verdict = 10
elseif cap(10) >= 0 and num('tok_day') >= cap(10) then verdict = 11
elseif cap(11) >= 0 and num('req_min') >= cap(11) then verdict = 12
elseif cap(12) >= 0 and num('tok_min') >= cap(12) then verdict = 13
else verdict = over(0, 0) end
if verdict == 0 then
  redis.call('HINCRBY', h, 'req_day', 1)
  redis.call('HINCRBY', h, 'req_min', 1)
end
redis.call('EXPIRE', h, ARGV[13])
return verdict
"#
    )
}

/// Hold a worst case. ARGV after the prelude's: [9] tokens, [10] usd, [11] ttl_s. Returns 0
/// or the budget index it would overshoot.
pub fn reserve() -> String {
    format!(
        "{KEY_PRELUDE}{}",
        r#"
local verdict = over(tonumber(ARGV[9]), tonumber(ARGV[10]))
if verdict == 0 then
  redis.call('HINCRBY', h, 'held_tok', ARGV[9])
  redis.call('HINCRBYFLOAT', h, 'held_usd', ARGV[10])
end
redis.call('EXPIRE', h, ARGV[11])
return verdict
"#
    )
}

/// Replace a hold with what was used. ARGV after the prelude's: [9] held tokens, [10] held
/// usd, [11] used tokens, [12] used usd, [13] requests to add (reconciliation), [14] ttl_s.
pub fn settle() -> String {
    format!(
        "{KEY_PRELUDE}{}",
        r#"
redis.call('HSET', h, 'held_tok', math.max(0, num('held_tok') - tonumber(ARGV[9])))
redis.call('HSET', h, 'held_usd', tostring(math.max(0, num('held_usd') - tonumber(ARGV[10]))))
for _, f in ipairs({'tok_day', 'tok_month', 'tok_min'}) do
  redis.call('HINCRBY', h, f, ARGV[11])
end
for _, f in ipairs({'usd_day', 'usd_month', 'usd_total'}) do
  redis.call('HINCRBYFLOAT', h, f, ARGV[12])
end
redis.call('HINCRBY', h, 'req_day', ARGV[13])
redis.call('EXPIRE', h, ARGV[14])
return 1
"#
    )
}
