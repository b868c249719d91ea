"""An MCP client of bigmgr's `/mcp`, made with the official MCP Python SDK (PyPI `mcp`, the
version scripts/test.sh pins): the integration test `it::mcp` runs it with that venv's python.

    MCP_TOKEN=bmt_... python mcp_client.py URL CALLS

URL is the server's `/mcp`; CALLS a JSON list of `{"tool": NAME, "arguments": {...}}`. The
token (if MCP_TOKEN is set and not empty) goes as `Authorization: Bearer ...`. It connects
with the SDK's streamable HTTP transport, initializes, lists the tools and calls each one in
turn, then prints one JSON object on stdout:

    {"ok": true, "protocol_version", "server": {"name", "version"}, "session_id",
     "tools": [{"name", "input_schema", "read_only"}],
     "calls": [{"tool", "is_error", "text", "structured"}],
     "statuses": [HTTP statuses of the SDK's requests, in order]}

or, when the SDK fails (no token: the server refuses), `{"ok": false, "error", "statuses"}`.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def run(url, token, calls):
    statuses = []

    async def record(response):
        statuses.append([response.request.method, response.status_code])

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30.0, read=60.0),
        event_hooks={"response": [record]},
    )
    out = {"statuses": statuses}
    try:
        async with http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await asyncio.wait_for(session.initialize(), 30)
                    out["protocol_version"] = init.protocol_version
                    out["server"] = {
                        "name": init.server_info.name,
                        "version": init.server_info.version,
                    }
                    out["tools_capability"] = init.capabilities.tools is not None
                    listed = await asyncio.wait_for(session.list_tools(), 30)
                    out["tools"] = [
                        {
                            "name": t.name,
                            "input_schema": t.input_schema,
                            "read_only": t.annotations.read_only_hint if t.annotations else None,
                        }
                        for t in listed.tools
                    ]
                    out["calls"] = []
                    for c in calls:
                        r = await asyncio.wait_for(
                            session.call_tool(c["tool"], c.get("arguments") or {}), 60
                        )
                        out["calls"].append(
                            {
                                "tool": c["tool"],
                                "is_error": r.is_error,
                                "text": "".join(
                                    getattr(block, "text", "") for block in r.content
                                ),
                                "structured": r.structured_content,
                            }
                        )
        out["ok"] = True
    except BaseException as e:  # noqa: BLE001 - the test reads what failed
        # anyio wraps failures of the transport's task group in exception groups.
        while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
            e = e.exceptions[0]
        out["ok"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    url, calls = sys.argv[1], json.loads(sys.argv[2])
    out = asyncio.run(run(url, os.environ.get("MCP_TOKEN", ""), calls))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
