-- One breaker operation, atomically. Mirrors breakers/stores.py:_Record rule by rule.
-- KEYS: 1 state hash, 2 count window (string of per-call codes), 3 time window (hash
--       second -> "calls,failures,slow"), 4 probe leases (zset token -> lease expiry)
-- ARGV: 1 op, 2 now, 3 origin, 4 channel, 5 name, 6 key ttl ms, 7 epoch for a new record,
--       8-24 config (see redis_store._config_args), 25.. op arguments
-- Returns JSON {record, changed, token?, retry_at?, applied?}; publishes the record on a change.
local S, CW, TW, LS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, now_s = ARGV[1], ARGV[2]
local now = tonumber(now_s)
local origin, channel, name = ARGV[3], ARGV[4], ARGV[5]
local ttl = tonumber(ARGV[6])
local wtype, wsize, min_calls = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local fr_thr, sr_thr = tonumber(ARGV[11]), tonumber(ARGV[12]) -- negative: disabled
local consec_max = tonumber(ARGV[13])
local open_wait, mult, max_wait = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local max_probes, probe_interval = tonumber(ARGV[17]), tonumber(ARGV[18])
local success_thr, lease_s = tonumber(ARGV[19]), tonumber(ARGV[20])
local wspec = ARGV[21]
local policy, permitted, max_ho_wait = ARGV[22], tonumber(ARGV[23]), tonumber(ARGV[24])
local A = 25

local function fmt(x) return string.format('%.17g', x) end

local raw = redis.call('HGETALL', S)
local st = {}
for i = 1, #raw, 2 do st[raw[i]] = raw[i + 1] end
if st.epoch == nil then
  st = {state = 'CLOSED', version = '0', epoch = ARGV[7], changed_at = '0', open_until = '0',
        reopen = '0', reason = '', origin = '', consec = '0', wspec = '', calls = '0',
        failures = '0', slow = '0', probe_ok = '0', probe_fail = '0', probe_slow = '0',
        last_probe = ''}
end
-- Records written before the failure_rate policy existed lack its counters.
st.probe_fail = st.probe_fail or '0'
st.probe_slow = st.probe_slow or '0'
local changed, dirty = false, false
local out = {}

local function transition(to, reason)
  st.state = to
  st.version = tostring(tonumber(st.version) + 1)
  st.changed_at = now_s
  st.reason = reason
  st.origin = origin
  changed, dirty = true, true
end

local function clear_window()
  redis.call('DEL', CW, TW)
  st.consec = '0'
end

local function open_wait_for(reopen)
  local w = open_wait * mult ^ math.min(reopen, 1024)
  if w > max_wait then w = max_wait end
  return w
end

local function clear_probes()
  redis.call('DEL', LS)
  st.probe_ok, st.probe_fail, st.probe_slow = '0', '0', '0'
end

local function half_open_expired()
  return max_ho_wait > 0 and now >= tonumber(st.changed_at) + max_ho_wait
end

local function trip(reason, reopen)
  st.reopen = tostring(reopen)
  st.open_until = fmt(now + open_wait_for(reopen))
  clear_window()
  clear_probes()
  transition('OPEN', reason)
end

local function reset(to, reason)
  st.reopen = '0'
  st.open_until = '0'
  clear_window()
  st.calls, st.failures, st.slow = '0', '0', '0'
  clear_probes()
  st.last_probe = ''
  transition(to, reason)
end

-- failure_rate policy: once the permitted calls are done, their rates decide.
local function judge_probes()
  local ok, fail, slow = tonumber(st.probe_ok), tonumber(st.probe_fail), tonumber(st.probe_slow)
  local n = ok + fail
  if n < permitted then
    st.version = tostring(tonumber(st.version) + 1)
    changed, dirty = true, true
    return
  end
  if fr_thr >= 0 and fail * 100 >= fr_thr * n then
    trip('probe_failure_rate', tonumber(st.reopen) + 1)
  elseif sr_thr >= 0 and slow * 100 >= sr_thr * n then
    trip('probe_slow_call_rate', tonumber(st.reopen) + 1)
  else
    reset('CLOSED', 'probe_succeeded')
  end
end

local function count(s, pattern)
  local _, n = string.gsub(s, pattern, '')
  return n
end

if op == 'flush' then
  local b_epoch, b_version = ARGV[A], ARGV[A + 1]
  local trailing, had_success = tonumber(ARGV[A + 2]), ARGV[A + 3] == '1'
  local codes = ARGV[A + 4]
  if (b_epoch ~= '' and b_epoch ~= st.epoch) or b_version ~= st.version
      or (st.state ~= 'CLOSED' and st.state ~= 'FORCED_CLOSED') then
    out.applied = false
  else
    out.applied = true
    dirty = true
    if st.wspec ~= wspec then
      redis.call('DEL', CW, TW)
      st.wspec = wspec
    end
    if had_success then
      st.consec = tostring(trailing)
    else
      st.consec = tostring(tonumber(st.consec) + trailing)
    end
    local calls, fails, slow = 0, 0, 0
    if wtype == 'count' then
      local w = (redis.call('GET', CW) or '') .. codes
      if #w > wsize then w = string.sub(w, -wsize) end
      redis.call('SET', CW, w)
      calls = #w
      fails = count(w, '[13]')
      slow = count(w, '[23]')
    else
      for i = A + 5, #ARGV, 4 do
        local sec = ARGV[i]
        local c, f, s = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
        local old = redis.call('HGET', TW, sec)
        if old then
          local oc, of, os = string.match(old, '^(%d+),(%d+),(%d+)$')
          c, f, s = c + tonumber(oc), f + tonumber(of), s + tonumber(os)
        end
        redis.call('HSET', TW, sec, c .. ',' .. f .. ',' .. s)
      end
      local horizon = math.floor(now) - wsize
      local all = redis.call('HGETALL', TW)
      for i = 1, #all, 2 do
        if tonumber(all[i]) <= horizon then
          redis.call('HDEL', TW, all[i])
        else
          local oc, of, os = string.match(all[i + 1], '^(%d+),(%d+),(%d+)$')
          calls, fails, slow = calls + tonumber(oc), fails + tonumber(of), slow + tonumber(os)
        end
      end
    end
    st.calls, st.failures, st.slow = tostring(calls), tostring(fails), tostring(slow)
    if st.state == 'CLOSED' then
      local reason = nil
      if consec_max > 0 and tonumber(st.consec) >= consec_max then
        reason = 'consecutive_failures'
      elseif calls >= min_calls then
        if fr_thr >= 0 and fails * 100 >= fr_thr * calls then
          reason = 'failure_rate'
        elseif sr_thr >= 0 and slow * 100 >= sr_thr * calls then
          reason = 'slow_call_rate'
        end
      end
      if reason then trip(reason, 0) end
    end
  end
elseif op == 'probe' then
  local token = ARGV[A]
  if st.state == 'OPEN' and now >= tonumber(st.open_until) then
    clear_probes()
    st.last_probe = ''
    transition('HALF_OPEN', 'open_wait_elapsed')
  end
  if st.state == 'HALF_OPEN' and half_open_expired() then
    trip('half_open_max_wait', tonumber(st.reopen) + 1)
    out.retry_at = st.open_until
  elseif st.state == 'HALF_OPEN' then
    redis.call('ZREMRANGEBYSCORE', LS, '-inf', fmt(now))
    local n = redis.call('ZCARD', LS)
    local full
    local judged = false
    if policy == 'first_failure' then
      full = n >= max_probes
    else
      local done = tonumber(st.probe_ok) + tonumber(st.probe_fail)
      if n == 0 and done >= permitted then
        -- All permitted calls are in (the limit was lowered meanwhile): judge now.
        judge_probes()
        changed, dirty = true, true
        judged = true
        if st.state == 'OPEN' then out.retry_at = st.open_until end
      end
      full = done + n >= permitted
    end
    if not judged then
      local last = tonumber(st.last_probe)
      local rate_ok = (last == nil) or (now - last >= probe_interval)
      if not full and rate_ok then
        redis.call('ZADD', LS, fmt(now + lease_s), token)
        st.last_probe = now_s
        dirty = true
        out.token = token
      else
        local retry = nil
        if full and n > 0 then
          retry = tonumber(redis.call('ZRANGE', LS, 0, 0, 'WITHSCORES')[2])
        end
        if not rate_ok then
          local r2 = last + probe_interval
          if retry == nil or r2 > retry then retry = r2 end
        end
        if max_ho_wait > 0 then
          local deadline = tonumber(st.changed_at) + max_ho_wait
          if retry == nil or deadline < retry then retry = deadline end
        end
        if retry then out.retry_at = fmt(retry) end
      end
    end
  elseif st.state == 'OPEN' then
    out.retry_at = st.open_until
  end
elseif op == 'complete' then
  local token, success, slow = ARGV[A], ARGV[A + 1] == '1', ARGV[A + 2] == '1'
  if st.state == 'HALF_OPEN' and redis.call('ZREM', LS, token) == 1 then
    out.applied = true
    dirty = true
    if half_open_expired() then
      trip('half_open_max_wait', tonumber(st.reopen) + 1)
    elseif policy == 'failure_rate' then
      if success then
        st.probe_ok = tostring(tonumber(st.probe_ok) + 1)
      else
        st.probe_fail = tostring(tonumber(st.probe_fail) + 1)
      end
      if slow then st.probe_slow = tostring(tonumber(st.probe_slow) + 1) end
      judge_probes()
    -- first_failure: a slow probe fails when slowness can trip the breaker at all.
    elseif (not success) or (slow and sr_thr >= 0) then
      trip('probe_failed', tonumber(st.reopen) + 1)
    else
      st.probe_ok = tostring(tonumber(st.probe_ok) + 1)
      if tonumber(st.probe_ok) >= success_thr then
        reset('CLOSED', 'probe_succeeded')
      else
        st.version = tostring(tonumber(st.version) + 1)
        changed, dirty = true, true
      end
    end
  else
    out.applied = false
  end
elseif op == 'force' then
  local mode = ARGV[A]
  if mode == 'AUTO' then
    reset('CLOSED', 'operator_auto')
  else
    reset(mode, 'operator')
  end
else
  return redis.error_reply('unknown breaker op ' .. tostring(op))
end

if dirty then
  local flat = {}
  for k, v in pairs(st) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  redis.call('HSET', S, unpack(flat))
  for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end
end
st.name = name
st.consec = nil
st.wspec = nil
st.last_probe = nil
local record = cjson.encode(st)
if changed then redis.call('PUBLISH', channel, record) end
out.record = st
out.changed = changed
return cjson.encode(out)
