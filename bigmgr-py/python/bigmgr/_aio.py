"""asyncio glue for the native classes: coroutines that run a blocking call in the running
loop's default executor, so the loop goes on meanwhile."""

import asyncio
import functools


async def in_executor(func, *args, **kwargs):
    """Awaits ``func(*args, **kwargs)`` run in the running loop's default executor."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))
