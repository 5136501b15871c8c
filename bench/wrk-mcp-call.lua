-- wrk script: every request is one MCP tools/call in an initialized session (MCP_SESSION), calling
-- MCP_TOOL with {"a": 1, "b": 2}; protocol version 2025-06-18.
local session = os.getenv("MCP_SESSION")
local tool = os.getenv("MCP_TOOL")
-- Ids must be unique among a session's requests in flight: each thread counts from its own base.
local counter = nil
request = function()
  counter = (counter or first_id) + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2025-06-18",
    ["Mcp-Session-Id"] = session,
  }
  local body = '{"jsonrpc":"2.0","id":' .. counter .. ',"method":"tools/call","params":{"name":"' .. tool ..
      '","arguments":{"a":1,"b":2}}}'
  return wrk.format("POST", wrk.path, headers, body)
end

-- Any answer but 200 with the sum would make the figures meaningless: count them. `failed` is a global of
-- each thread's Lua state; done() runs in the main state and adds them up.
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("first_id", #threads * 1000000000)
end
failed = 0
local shown = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"sum":3', 1, true) then
    failed = failed + 1
    if shown < 3 then shown = shown + 1; io.stderr:write(status .. " " .. body:sub(1, 300) .. "\n") end
  end
end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("failed") end
  io.write(string.format("failed calls: %d\n", total))
end
