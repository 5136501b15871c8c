-- wrk script: every request publishes one binary-mode CloudEvent with a unique id.
local counter = 0
request = function()
  counter = counter + 1
  local headers = {
    ["ce-specversion"] = "1.0",
    ["ce-id"] = "wrk-" .. tostring(counter) .. "-" .. tostring(math.random(1, 1000000000)),
    ["ce-type"] = "bench.ingress",
    ["ce-source"] = "/bench/wrk",
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", wrk.path, headers, '{"bench":true,"payload":"0123456789abcdef"}')
end
