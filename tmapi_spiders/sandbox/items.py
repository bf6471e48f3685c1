"""Synthetic 1688 items as JSON bytes, cheaply: pre-rendered pieces from shared pools.

An item is a pure function of a few random bytes (catalogue.py hands them out) and its
item_id. The bytes pick a product (title, image, price, tiers, brand), a sales level
and a supplier variant; each pool entry is rendered to JSON once per process on first
use, from its index alone, so the bytes never depend on the order pools were filled in.
A new item then costs one small format and five pieces appended to the page.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from tmapi_spiders.sandbox import spec

try:  # orjson is optional: about 3x faster than json for these documents
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - exercised only without orjson
    import json

    def dumps(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------
# Phrase tables. Word i of every language names the same thing.
_NOUNS: dict[str, tuple[str, ...]] = {
    "en": ("Phone Case", "Water Bottle", "Backpack", "Desk Lamp", "Sneakers", "T-Shirt", "Wall Clock",
           "Kitchen Knife", "Toy Car", "Sunglasses"),
    "zh": ("手机壳", "水杯", "双肩包", "台灯", "运动鞋", "T恤", "挂钟", "菜刀", "玩具车", "太阳镜"),
    "ru": ("Чехол для телефона", "Бутылка для воды", "Рюкзак", "Настольная лампа", "Кроссовки", "Футболка",
           "Настенные часы", "Кухонный нож", "Игрушечная машинка", "Солнцезащитные очки"),
    "th": ("เคสโทรศัพท์", "ขวดน้ำ", "กระเป๋าเป้", "โคมไฟตั้งโต๊ะ", "รองเท้าผ้าใบ", "เสื้อยืด", "นาฬิกาแขวน",
           "มีดทำครัว", "รถของเล่น", "แว่นกันแดด"),
    "pt": ("Capa de Celular", "Garrafa de Água", "Mochila", "Luminária de Mesa", "Tênis", "Camiseta",
           "Relógio de Parede", "Faca de Cozinha", "Carrinho de Brinquedo", "Óculos de Sol"),
    "es": ("Funda de Teléfono", "Botella de Agua", "Mochila", "Lámpara de Escritorio", "Zapatillas", "Camiseta",
           "Reloj de Pared", "Cuchillo de Cocina", "Coche de Juguete", "Gafas de Sol"),
    "tr": ("Telefon Kılıfı", "Su Şişesi", "Sırt Çantası", "Masa Lambası", "Spor Ayakkabı", "Tişört", "Duvar Saati",
           "Mutfak Bıçağı", "Oyuncak Araba", "Güneş Gözlüğü"),
    "vi": ("Ốp Điện Thoại", "Bình Nước", "Ba Lô", "Đèn Bàn", "Giày Thể Thao", "Áo Thun", "Đồng Hồ Treo Tường",
           "Dao Nhà Bếp", "Xe Đồ Chơi", "Kính Râm"),
    "ja": ("スマホケース", "水筒", "リュックサック", "デスクライト", "スニーカー", "Tシャツ", "掛け時計", "包丁",
           "おもちゃの車", "サングラス"),
    "ko": ("휴대폰 케이스", "물병", "백팩", "책상 스탠드", "운동화", "티셔츠", "벽시계", "주방 칼", "장난감 자동차",
           "선글라스"),
}  # fmt: skip
_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "en": ("New", "Portable", "Waterproof", "Cute", "Minimalist", "Wholesale"),
    "zh": ("新款", "便携", "防水", "可爱", "简约", "批发"),
    "ru": ("Новый", "Портативный", "Водонепроницаемый", "Милый", "Минималистичный", "Оптовый"),
    "th": ("ใหม่", "พกพา", "กันน้ำ", "น่ารัก", "มินิมอล", "ขายส่ง"),
    "pt": ("Novo", "Portátil", "À Prova d'Água", "Fofo", "Minimalista", "Atacado"),
    "es": ("Nuevo", "Portátil", "Impermeable", "Lindo", "Minimalista", "Al por Mayor"),
    "tr": ("Yeni", "Taşınabilir", "Su Geçirmez", "Sevimli", "Minimalist", "Toptan"),
    "vi": ("Mới", "Di Động", "Chống Nước", "Dễ Thương", "Tối Giản", "Bán Sỉ"),
    "ja": ("新作", "携帯用", "防水", "かわいい", "シンプル", "卸売"),
    "ko": ("신상", "휴대용", "방수", "귀여운", "미니멀", "도매"),
}
_MATERIALS: dict[str, tuple[str, ...]] = {
    "en": ("Plastic", "Stainless Steel", "Cotton", "Leather"),
    "zh": ("塑料", "不锈钢", "纯棉", "皮革"),
    "ru": ("Пластиковый", "Из нержавеющей стали", "Хлопковый", "Кожаный"),
    "th": ("พลาสติก", "สแตนเลส", "ผ้าฝ้าย", "หนัง"),
    "pt": ("de Plástico", "de Aço Inoxidável", "de Algodão", "de Couro"),
    "es": ("de Plástico", "de Acero Inoxidable", "de Algodón", "de Cuero"),
    "tr": ("Plastik", "Paslanmaz Çelik", "Pamuklu", "Deri"),
    "vi": ("Nhựa", "Thép Không Gỉ", "Cotton", "Da"),
    "ja": ("プラスチック", "ステンレス", "綿", "レザー"),
    "ko": ("플라스틱", "스테인리스", "면", "가죽"),
}
# Noun-first word order and no spaces between words, per language.
_NOUN_FIRST = frozenset({"pt", "es", "vi", "th"})
_NO_SPACES = frozenset({"zh", "ja"})
assert set(_NOUNS) == set(_ADJECTIVES) == set(_MATERIALS) == set(spec.LANGUAGES)

_CATEGORIES = (
    ["1042207", "50911", "7"], ["122216001", "1038378", "68"], ["127380009", "54", "312"],
    ["124050001", "1043395", "1501"], ["127424004", "1031918", "311"], ["127502001", "10166", "10"],
    ["125012003", "1038378", "17"], ["121720002", "1043351", "1501"], ["124226010", "1813", "311"],
    ["127384001", "1043622", "54"],
)  # fmt: skip
_PLACES = (
    ["Guangdong", "Futian District, Shenzhen"], ["Guangdong", "Bao'an District, Shenzhen City"],
    ["Zhejiang", "Yiwu City, Jinhua"], ["Guangdong", "Baiyun District, Guangzhou"], ["Fujian", "Jinjiang, Quanzhou"],
    ["Jiangsu", "Changshu, Suzhou"], ["Zhejiang", "Ningbo"], ["Shandong", "Linyi"], ["Hebei", "Baoding"],
    ["Guangdong", "Chaozhou"],
)  # fmt: skip
_CITY_ZH = ("深圳", "深圳", "义乌", "广州", "晋江", "常熟", "宁波", "临沂", "保定", "潮州")
_COMPANY_WORDS = ("鑫源", "华盛", "恒达", "佳美", "瑞丰", "宏图", "金诚", "永信", "博远", "优品", "创意", "星辰")
_COMPANY_KINDS = ("贸易有限公司", "电子科技有限公司", "日用品厂", "工艺品有限公司", "服饰有限公司", "塑胶制品厂")
_BIZ_TYPES = ("经销批发", "招商代理", "其他")
_BRANDS = ("中性", "yot", "其他", "OEM", "无", "", "鑫源", "Anker")
_TITLE_TAGS = ((), (), ("1688严选",), ("工厂直销",), ("跨境专供",), ("1688严选", "跨境专供"))
_SERVICE_TAGS = ("7×24H响应", "先采后付", "48小时发货", "退货包运费", "极速退款", "支持定制")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SLUG = "abcdefghijklmnopqrstuvwxyz0123456789"

# The share of items that have each filter attribute (threshold out of 256).
_SHARE = {
    "support_dropshipping": 150,
    "is_factory": 90,
    "verified_supplier": 160,
    "free_shipping": 77,
    "new_arrival": 38,
}
FILTER_BITS = {name: 1 << n for n, name in enumerate(spec.FILTERS)}
# The filter bits of an item's mask, in spec.FILTERS order: bit n <=> random byte 4+n < its share.
_THRESHOLDS = tuple(_SHARE[name] for name in spec.FILTERS)
assert spec.FILTERS == ("support_dropshipping", "is_factory", "verified_supplier", "free_shipping", "new_arrival")

# Random bytes an item is made of (catalogue.py hands them out): product (2), sales
# level (2), filter bits (5), supplier (1).
DIGEST_SIZE = 10
# Pool sizes. An item picks a product (title, price, tiers, brand) and a sales level with
# random bits, and a supplier by its four supplier-side filter bits and a byte.
PRODUCTS = 1 << 14
SALES_LEVELS = 1 << 13
SHOPS_PER_KIND = 256
# Prices are log-uniform from 1.50 to 600.00 (product p has the p-th price level); yearly
# sales from 0 to 20000, mostly small.
_CENTS = [int(150 * math.exp(p * math.log(400) / PRODUCTS)) for p in range(PRODUCTS)]
_SALES = [int(math.exp(k * math.log(20001) / SALES_LEVELS)) - 1 for k in range(SALES_LEVELS)]


def core(d: bytes) -> tuple[int, int, int]:
    """(price in cents, yearly sales, filter bit mask): all that sorting and filtering need."""
    t0, t1, t2, t3, t4 = _THRESHOLDS
    return (
        _CENTS[(d[0] << 8 | d[1]) % PRODUCTS],
        _SALES[(d[2] << 8 | d[3]) % SALES_LEVELS],
        (d[4] < t0) | (d[5] < t1) << 1 | (d[6] < t2) << 2 | (d[7] < t3) << 3 | (d[8] < t4) << 4,
    )


# ---------------------------------------------------------------------------------------
# Static pieces, rendered at import.
def _j(text: str) -> bytes:
    """`text` as a JSON string literal, UTF-8 (Chinese kept as is)."""
    return dumps(text)


_TRUE_FALSE = (b"false", b"true")
WORD_COMBOS = 10 * 6 * 4
# Title prefixes as JSON: the opening quote and the words, per language and (noun, adjective, material).
TITLE_HEADS: dict[str, list[bytes]] = {}
for _lang in spec.LANGUAGES:
    _heads = []
    for _noun in range(10):
        for _adj in range(6):
            for _mat in range(4):
                n, a, m = _NOUNS[_lang][_noun], _ADJECTIVES[_lang][_adj], _MATERIALS[_lang][_mat]
                words = (n, a, m) if _lang in _NOUN_FIRST else (a, m, n)
                _heads.append(_j(("" if _lang in _NO_SPACES else " ").join(words) + " ")[:-1])
    TITLE_HEADS[_lang] = _heads
_J_CATEGORIES = [dumps(c) for c in _CATEGORIES]
_J_BRANDS = [_j(b) for b in _BRANDS]
_J_TITLE_TAGS = [dumps(list(t)) for t in _TITLE_TAGS]
_J_PLACES = [dumps(p) for p in _PLACES]
_J_COMPANIES = [[_j(_CITY_ZH[p] + w + k) for w in _COMPANY_WORDS for k in _COMPANY_KINDS] for p in range(len(_PLACES))]
_J_BIZ_TYPES = [_j(b) for b in _BIZ_TYPES]
_J_FACTORY_BIZ = _j("生产加工")
_J_SERVICE_TAGS = [dumps(list(_SERVICE_TAGS[s : s + n])) for s in range(6) for n in range(3)]
_HEAD = b'{"item_id":%d,"product_url":"https://detail.1688.com/offer/%d.html","title":'
# bytes.translate tables mapping any byte to a letter or digit: cheap random-looking ids.
_ALNUM_TABLE = bytes(ord(_ALNUM[b % 62]) for b in range(256))
_SLUG_TABLE = bytes(ord(_SLUG[b % 36]) for b in range(256))


def _price(cents: int) -> bytes:
    return b"%d.%02d" % divmod(cents, 100)


# ---------------------------------------------------------------------------------------
# Pools, each entry rendered on first use (a pure function of its index).
# A product: (title words index, model code + closing quote, JSON from title_origin to
# gmv_fuzzy's opening quote, without and with a drop-ship price).
Product = tuple[int, bytes, bytes, bytes]
_PRODUCT_POOL: list[Product | None] = [None] * PRODUCTS
_SALES_POOL: list[bytes | None] = [None] * SALES_LEVELS
_SHOP_POOL: list[bytes | None] = [None] * (16 * SHOPS_PER_KIND)

_PRODUCT = (
    b',"title_origin":%s%s,"img":"https://cbu01.alicdn.com/img/ibank/O1CN01%s_!!%d-0-cib.jpg",'
    b'"category_path":%s,"price":"%s","price_info":{"drop_ship_price":%s,"wholesale_price":"%s",'
    b'"origin_price":"%s"},"brand":%s,"title_tags":%s,"quantity_begin":%d,"quantity_prices":[%s],'
    b'"sale_info":{"gmv_fuzzy":"'
)
_TIER = b'{"begin_num":"%d","end_num":"%s","price":"%s"}'
_SALE = (
    b'%s","gmv_30days":0,"gmv_30days_cb":0,"sale_quantity":%d,"sale_quantity_month":%d,'
    b'"sale_quantity_90days":%d,"sale_quantity_360days":%d,"orders_count":%d},"type":"normal",'
)
_SHOP = (
    b'"delivery_info":{"area_from":%s,"weight":%s,"suttle_weight":%s,"free_postage":%s},'
    b'"item_repurchase_rate":"0.%d","goods_score":%d,"image_dsm_score":0,"primary_rank_score":0,'
    b'"super_new_product":%s,"shop_info":{"login_id":null,"member_id":"b2b-%d","company_name":%s,'
    b'"shop_url":"http://%s.1688.com","biz_type":%s,"is_factory":%s,"is_super_factory":%s,'
    b'"is_gold_supplier":%s,"location":%s,"service_tags":%s,"tp_member":%s,"tp_year":%d,'
    b'"factory_inspection":%s,"shop_repurchase_rate":"%d.%d%%"}}'
)


def _product(p: int) -> Product:
    e = hashlib.blake2b(b"product:%d" % p, digest_size=40).digest()
    words = (e[0] << 8 | e[1]) % WORD_COMBOS
    model = b'%c%03d"' % (65 + e[2] % 26, (e[3] << 8 | e[4]) % 1000)
    cents = _CENTS[p]
    price = _price(cents)
    origin = price if e[5] < 160 else _price(cents + cents * (e[5] % 40) // 100)
    begin = 1 + e[6] % 10
    starts = (begin, begin * 10, begin * 100)[: e[7] & 3]
    tiers = b",".join(
        _TIER % (start, b"" if t == len(starts) - 1 else b"%d" % (starts[t + 1] - 1), _price(cents * (20 - t) // 20))
        for t, start in enumerate(starts)
    )
    image = e[16:38].translate(_ALNUM_TABLE), 1_000_000_000 + int.from_bytes(e[11:15], "big") % 3_000_000_000
    bodies = [
        _PRODUCT
        % (
            TITLE_HEADS["zh"][words],
            model,
            *image,
            _J_CATEGORIES[words // 24],
            price,
            drop_ship,
            price,
            origin,
            _J_BRANDS[e[8] % len(_J_BRANDS)],
            _J_TITLE_TAGS[e[9] % len(_J_TITLE_TAGS)],
            begin,
            tiers,
        )
        for drop_ship in (b'""', b'"%s"' % _price(cents * (85 + e[10] % 16) // 100))
    ]
    product = (words, model, bodies[0], bodies[1])
    _PRODUCT_POOL[p] = product
    return product


def _sales(k: int) -> bytes:
    """Sales figures; gmv_fuzzy (a rounded-down turnover) uses a unit price of the level's own."""
    e = hashlib.blake2b(b"sales:%d" % k, digest_size=8).digest()
    sales = _SALES[k]
    month = sales * (e[0] % 20) // 100
    quarter = max(month, sales * (20 + e[1] % 40) // 100)
    gmv = b"%d" % (sales * _CENTS[(e[3] << 8 | e[4]) % PRODUCTS] // 100)
    fuzzy = b"0" if gmv == b"0" else gmv[:1] + b"0" * (len(gmv) - 1) + b"+"
    block = _SALE % (fuzzy, sales, month, quarter, sales, sales * (10 + e[2] % 60) // 100)
    _SALES_POOL[k] = block
    return block


def _shop(number: int) -> bytes:
    """Supplier `number`: its filter bits (factory, verified, free postage, new) times 256 plus n.
    The supplier proper (name, member id, place) depends on (factory, verified, n) only."""
    factory, verified, free, new = number >> 8 & 1, number >> 9 & 1, number >> 10 & 1, number >> 11 & 1
    e = hashlib.blake2b(b"shop:%d:%d:%d" % (factory, verified, number & 255), digest_size=64).digest()
    f = hashlib.blake2b(b"listing:%d" % number, digest_size=4).digest()
    member = 1_000_000_000 + int.from_bytes(e[3:7], "big") % 3_000_000_000
    place = e[7] % len(_PLACES)
    weight = b"0" if e[22] < 128 else b"%.2f" % (0.05 + e[23] / 100)
    suttle = b"0" if e[22] < 128 else b"%.2f" % ((0.05 + e[23] / 100) * 0.9)
    rest = _SHOP % (
        _J_PLACES[place],
        weight,
        suttle,
        _TRUE_FALSE[free],
        f[0] % 10,
        f[1] % 6,
        _TRUE_FALSE[new],
        member,
        _J_COMPANIES[place][e[51] % len(_J_COMPANIES[place])],
        e[14:20].translate(_SLUG_TABLE),
        _J_FACTORY_BIZ if factory else _J_BIZ_TYPES[e[53] % 3],
        _TRUE_FALSE[factory],
        _TRUE_FALSE[factory and e[54] < 40],
        _TRUE_FALSE[e[55] < 100],
        _J_PLACES[place],
        _J_SERVICE_TAGS[e[20] % 18],
        _TRUE_FALSE[verified],
        1 + e[56] % 15 if verified else 0,
        _TRUE_FALSE[factory and e[57] < 128],
        e[58] % 60,
        e[59] % 10,
    )
    _SHOP_POOL[number] = rest
    return rest


# ---------------------------------------------------------------------------------------
def add_item(parts: list[bytes], d: bytes, item_id: int, titles: list[bytes]) -> None:
    """Append item JSON pieces to `parts` (joined once per page) from its random bytes `d`:
    three pool look-ups, no copying. `titles` is TITLE_HEADS of the answer's language."""
    t0, t1, t2, t3, t4 = _THRESHOLDS
    p = (d[0] << 8 | d[1]) % PRODUCTS
    k = (d[2] << 8 | d[3]) % SALES_LEVELS
    shop = (d[5] < t1) << 8 | (d[6] < t2) << 9 | (d[7] < t3) << 10 | (d[8] < t4) << 11 | d[9]
    words, model, plain, drop_ship = _PRODUCT_POOL[p] or _product(p)
    parts += (
        _HEAD % (item_id, item_id),
        titles[words],
        model,
        drop_ship if d[4] < t0 else plain,
        _SALES_POOL[k] or _sales(k),
        _SHOP_POOL[shop] or _shop(shop),
    )
