"""A small MCP server for the tests, over stdio (default) or Streamable HTTP.

Tools: add, echo, slow (sleeps), fail (reports an error), image (a 1x1 PNG), env (names
the environment variables it was given), crash (exits the process mid-call).

    python -m tests.mcp_server                  # stdio
    python -m tests.mcp_server --http PORT      # Streamable HTTP on 127.0.0.1:PORT/mcp
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.utilities.types import Image

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

server = MCPServer("htmxchat-test", instructions="Test tools for htmxchat.")


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> str:
    return str(a + b)


@server.tool(description="Return the text it was given.")
def echo(text: str) -> str:
    return text


@server.tool(description="Wait some seconds, then say so.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"waited {seconds} s"


@server.tool(description="Always fails.")
def fail(reason: str = "it was asked to") -> str:
    raise ValueError(f"failed because {reason}")


@server.tool(description="A one-pixel PNG image.")
def image() -> Image:
    return Image(data=PNG, format="png")


@server.tool(description="The names of the environment variables the server was started with.")
def env() -> str:
    return " ".join(sorted(os.environ))


@server.tool(description="Add a tool called extra, and tell the client its tools changed.")
async def grow(ctx: Context) -> str:
    server.add_tool(lambda: "extra ran", name="extra", description="Added while running.")
    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool(description="Exit the server process at once.")
def crash() -> str:
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None, help="serve Streamable HTTP on PORT")
    parser.add_argument("--fail-start", action="store_true", help="exit before serving")
    args = parser.parse_args()
    if args.fail_start:
        print("cannot start: the test asked me to fail", file=sys.stderr, flush=True)
        sys.exit(2)
    if args.http is not None:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
