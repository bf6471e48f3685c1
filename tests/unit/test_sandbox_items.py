"""Items built from lazily filled shared pools: still byte-identical in any process, and still varied."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from urllib.parse import urlencode

from tests.conftest import SANDBOX_TOKEN, SandboxClient
from tmapi_spiders.api import contract

IMG = "https://cbu01.alicdn.com/img/ibank/pools_total-400.jpg"


def test_a_fresh_process_answers_the_same_bytes(sandbox_client: SandboxClient) -> None:
    # The shared server has filled its pools in whatever order earlier tests asked; a fresh
    # process fills them in another order (this page first). The bytes must not differ.
    params = {"img_url": IMG, "page": 3, "sort": "sales", "language": "ja", "is_factory": "true"}
    for page in range(1, 4):  # touch other pool entries first here
        sandbox_client.search(IMG.replace("pools", "other"), page=page)
    expected = sandbox_client.search(**params).body
    proc = subprocess.Popen(
        [sys.executable, "-m", "tmapi_spiders.sandbox", "--port", "0", "--token", SANDBOX_TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        query = urlencode({contract.TOKEN_QUERY_PARAM: SANDBOX_TOKEN, **params})
        with urllib.request.urlopen(f"{base_url}{contract.SEARCH_PATH}?{query}", timeout=10) as answer:
            assert answer.read() == expected
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_items_of_one_image_are_varied(sandbox_client: SandboxClient) -> None:
    total, items = sandbox_client.all_items(IMG)
    assert total == len(items) == 400
    assert len({i["item_id"] for i in items}) == 400
    # Items draw a product (title, price, tiers), a sales level and a supplier from pools:
    # a few share a product, none shares all three, and the pools are used widely.
    products = {(i["title"], i["price"], str(i["quantity_prices"])) for i in items}
    assert len(products) > 370
    whole = {str({k: v for k, v in i.items() if k not in ("item_id", "product_url")}) for i in items}
    assert len(whole) == 400
    assert len({i["shop_info"]["member_id"] for i in items}) > 150
    assert len({i["sale_info"]["sale_quantity"] for i in items}) > 100
    assert len({i["img"] for i in items}) > 370
