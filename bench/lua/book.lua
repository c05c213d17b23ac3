-- POST a one-hour booking per request: a different GPU each time (each thread takes every
-- n-th line of GPUS_FILE), or always the first one with "hot"; API keys from KEYS_FILE, each
-- thread its own share of them, in turn.
-- wrk -s book.lua URL -- GPUS_FILE KEYS_FILE [hot|keyed|interruptible]
-- "keyed": every request carries an Idempotency-Key of its own, so a proxy may send it again.
-- "interruptible": an interruptible booking at a bid of 0.1 per hour.
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local gpus, keys = {}, {}
local g, k = 0, 0
local hot = false
local keyed = false
local sent = 0
local body = '{"duration_hours": 1}'

function init(args)
  local lines = {}
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
  local all_keys = {}
  for line in io.lines(args[2]) do all_keys[#all_keys + 1] = line end
  hot = args[3] == "hot"
  keyed = args[3] == "keyed"
  if args[3] == "interruptible" then
    body = '{"duration_hours": 1, "rental_type": "interruptible", "bid_per_hour": "0.1"}'
  end
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  for idx = tid + 1, #lines, nthreads do gpus[#gpus + 1] = lines[idx] end
  for idx = tid + 1, #all_keys, nthreads do keys[#keys + 1] = all_keys[idx] end
  if hot then gpus = { lines[1] } end
end

function request()
  k = k % #keys + 1
  if not hot then g = g % #gpus + 1 else g = 1 end
  local headers = { ["X-Api-Key"] = keys[k], ["Content-Type"] = "application/json" }
  if keyed then
    sent = sent + 1
    headers["Idempotency-Key"] = "bench-" .. tid .. "-" .. sent
  end
  return wrk.format("POST", "/v1/marketplace/gpu/" .. gpus[g] .. "/book", headers, body)
end
