-- POST a one-hour booking by criteria per request: the criteria in turn from CRITERIA_FILE
-- (one JSON object per line, without its closing brace), API keys from KEYS_FILE, each
-- thread its own share of both.
-- wrk -s best.lua URL -- CRITERIA_FILE KEYS_FILE
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local criteria, keys = {}, {}
local c, k = 0, 0

function init(args)
  local lines = {}
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
  local all_keys = {}
  for line in io.lines(args[2]) do all_keys[#all_keys + 1] = line end
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  for idx = tid + 1, #lines, nthreads do criteria[#criteria + 1] = lines[idx] end
  if #criteria == 0 then criteria = lines end
  for idx = tid + 1, #all_keys, nthreads do keys[#keys + 1] = all_keys[idx] end
end

function request()
  k = k % #keys + 1
  c = c % #criteria + 1
  local headers = { ["X-Api-Key"] = keys[k], ["Content-Type"] = "application/json" }
  return wrk.format("POST", "/v1/marketplace/book", headers, criteria[c] .. ', "duration_hours": 1}')
end
