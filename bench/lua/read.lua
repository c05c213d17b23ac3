-- GET requests cycling through the paths in a file (one per line), with an API key.
-- wrk -s read.lua URL -- PATHS_FILE [API_KEY]
local paths = {}
local key = ""
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  key = args[2] or ""
  i = math.random(#paths)
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], { ["X-Api-Key"] = key })
end
