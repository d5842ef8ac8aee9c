"""Flash sale: `buyers` people press buyNow on one product at the same moment, on PostgreSQL.

Success is counted from the API's answers and checked against the database afterwards:
units sold must equal the stock that was there, the stock must end at zero (never below),
and every buyer beyond the stock must get OUT_OF_STOCK.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from bench.gql import HttpGraphQL
from bench.stats import percentile

BUY_NOW = "mutation($p: ID!, $s: ID) { buyNow(productId: $p, quantity: 1, streamId: $s) { id total } }"


@dataclass
class FlashSale:
    buyers: int = 0
    stock_before: int = 0
    stock_after: int = 0
    orders_ok: int = 0
    units_sold_in_db: int = 0
    outcomes: Counter = field(default_factory=Counter)
    first_error: str = ""
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def oversold(self) -> bool:
        return self.units_sold_in_db > self.stock_before or self.stock_after < 0

    @property
    def checkouts_per_second(self) -> float:
        return self.orders_ok / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float | None:
        return percentile(self.latencies_ms, 99)


async def _stock_and_sold(database_url: str, product_id: int) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        stock = await conn.fetchval("SELECT stock FROM products WHERE id = $1", product_id)
        sold = await conn.fetchval(
            "SELECT COALESCE(SUM(quantity), 0) FROM order_items WHERE product_id = $1", product_id
        )
        return stock, sold
    finally:
        await conn.close()


async def flash_sale(server_url: str, database_url: str, product_id: int, stream_id: int,
                     tokens: list[str]) -> FlashSale:
    sale = FlashSale(buyers=len(tokens))
    sale.stock_before, sold_before = await _stock_and_sold(database_url, product_id)
    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(connector=connector) as session:
        api = HttpGraphQL(session, f"{server_url}/graphql")
        start = asyncio.Event()

        async def buyer(token: str) -> None:
            await start.wait()
            began = time.perf_counter()
            answer = await api.execute(BUY_NOW, {"p": str(product_id), "s": str(stream_id)}, token=token)
            sale.latencies_ms.append((time.perf_counter() - began) * 1000)
            if answer.get("errors"):
                code = (answer["errors"][0].get("extensions") or {}).get("code", "no code")
                sale.outcomes[code] += 1
                if code != "OUT_OF_STOCK":
                    sale.first_error = sale.first_error or str(answer["errors"][0])[:300]
            else:
                sale.outcomes["ordered"] += 1

        tasks = [asyncio.create_task(buyer(token)) for token in tokens]
        await asyncio.sleep(0.2)  # every buyer waits at the line before the doors open
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        sale.seconds = time.perf_counter() - began
    sale.orders_ok = sale.outcomes["ordered"]
    sale.stock_after, sold_after = await _stock_and_sold(database_url, product_id)
    sale.units_sold_in_db = sold_after - sold_before
    return sale
