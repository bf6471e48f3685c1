"""A deterministic synthetic 1688 catalogue: one result set per image, built lazily.

Every value is derived from a hash of the image's identity and the item's position, so
the same request always gets the same bytes, different images get different sets, and
an item is only built (and serialised, once per language) when a page shows it.
Sorting and filtering need only a few numbers per item (its "core"), built on demand.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tmapi_spiders import contract

try:  # orjson is optional: about 3x faster than json for these documents
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - exercised only without orjson
    import json

    def dumps(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# Generated catalogues hold at most this many items; a larger `total=N` hint is capped.
MAX_TOTAL = 10_000
# Converted images: /search/imgextra/<identity>[_total-N].jpg
CONVERTED_DIR = contract.CONVERTED_PREFIX + "imgextra/"
_CONVERTED_RE = re.compile(r"^/search/imgextra/([0-9a-f]{24})(?:_total-\d+)?\.jpg$")
_TOTAL_SEGMENT_RE = re.compile(r"(?:^|[/_.\-])total-(\d+)(?=$|[/_.\-?#])")

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
assert set(_NOUNS) == set(_ADJECTIVES) == set(_MATERIALS) == set(contract.LANGUAGES)

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
FILTER_BITS = {name: 1 << n for n, name in enumerate(contract.FILTERS)}


# ---------------------------------------------------------------------------------------
# Image identity and the item count.
def identity_of(img_url: str) -> str:
    """The hash that seeds an image's catalogue; a converted path keeps its source's identity."""
    match = _CONVERTED_RE.match(img_url)
    if match:
        return match.group(1)
    return hashlib.sha256(img_url.encode()).hexdigest()[:24]


def total_hint(url: str) -> int | None:
    """A forced item count: `total=N` in the image URL's query, or `total-N` in its path."""
    parts = urlsplit(url)
    values = parse_qs(parts.query).get("total")
    if values and values[0].isdigit():
        return min(int(values[0]), MAX_TOTAL)
    match = _TOTAL_SEGMENT_RE.search(parts.path)
    if match:
        return min(int(match.group(1)), MAX_TOTAL)
    return None


def converted_path(url: str) -> str:
    """The stable path that the conversion API answers for `url` (keeps a total hint)."""
    hint = total_hint(url)
    suffix = f"_total-{hint}" if hint is not None else ""
    return f"{CONVERTED_DIR}{identity_of(url)}{suffix}.jpg"


def natural_total(identity: str) -> int:
    """The item count when none is forced: 0..400 from a mixture that hits the edge cases
    (empty results, exact multiples of 20, one item over a multiple) often."""
    h = int(identity[:12], 16)
    kind, rest = h % 20, h // 20
    if kind < 2:  # 10 %: nothing found
        return 0
    if kind < 5:  # 15 %: an exact multiple of 20
        return 20 * (1 + rest % 20)
    if kind < 8:  # 15 %: one over a multiple of 20
        return 20 * (rest % 20) + 1
    return 1 + rest % 400  # 60 %: anything


# ---------------------------------------------------------------------------------------
def _j(text: str) -> bytes:
    """`text` as a JSON string literal, UTF-8 (Chinese kept as is)."""
    return dumps(text)


_TRUE_FALSE = (b"false", b"true")
# Title prefixes as JSON: the opening quote and the words, per language and (noun, adjective, material).
_TITLE_HEADS: dict[str, list[bytes]] = {}
for _lang in contract.LANGUAGES:
    _heads = []
    for _noun in range(10):
        for _adj in range(6):
            for _mat in range(4):
                n, a, m = _NOUNS[_lang][_noun], _ADJECTIVES[_lang][_adj], _MATERIALS[_lang][_mat]
                words = (n, a, m) if _lang in _NOUN_FIRST else (a, m, n)
                _heads.append(_j(("" if _lang in _NO_SPACES else " ").join(words) + " ")[:-1])
    _TITLE_HEADS[_lang] = _heads
_J_CATEGORIES = [dumps(c) for c in _CATEGORIES]
_J_PLACES = [dumps(p) for p in _PLACES]
_J_COMPANIES = [[_j(_CITY_ZH[p] + w + k) for w in _COMPANY_WORDS for k in _COMPANY_KINDS] for p in range(len(_PLACES))]
_J_BIZ_TYPES = [_j(b) for b in _BIZ_TYPES]
_J_FACTORY_BIZ = _j("生产加工")
_J_BRANDS = [_j(b) for b in _BRANDS]
_J_TITLE_TAGS = [dumps(list(t)) for t in _TITLE_TAGS]
_J_SERVICE_TAGS = [dumps(list(_SERVICE_TAGS[s : s + n])) for s in range(6) for n in range(3)]
# bytes.translate tables mapping any byte to a letter or digit: cheap random-looking ids.
_ALNUM_TABLE = bytes(ord(_ALNUM[b % 62]) for b in range(256))
_SLUG_TABLE = bytes(ord(_SLUG[b % 36]) for b in range(256))

# Everything of an item after its title, in the seed's key order; delivery_info and
# shop_info come pre-rendered from the shop pool.
_TAIL = (
    b',"title_origin":%s%s","img":"https://cbu01.alicdn.com/img/ibank/O1CN01%s_!!%d-0-cib.jpg",'
    b'"category_path":%s,"price":"%s","price_info":{"drop_ship_price":%s,'
    b'"wholesale_price":"%s","origin_price":"%s"},"brand":%s,"title_tags":%s,"quantity_begin":%d,'
    b'"quantity_prices":[%s],"sale_info":{"gmv_fuzzy":"%s","gmv_30days":0,"gmv_30days_cb":0,"sale_quantity":%d,'
    b'"sale_quantity_month":%d,"sale_quantity_90days":%d,"sale_quantity_360days":%d,"orders_count":%d},'
    b'"type":"normal",%s,"item_repurchase_rate":"0.%d","goods_score":%d,"image_dsm_score":0,'
    b'"primary_rank_score":0,"super_new_product":%s,%s'
)
_DELIVERY = b'"delivery_info":{"area_from":%s,"weight":%s,"suttle_weight":%s,"free_postage":%s}'
_SHOP = (
    b'"shop_info":{"login_id":null,"member_id":"b2b-%d","company_name":%s,'
    b'"shop_url":"http://%s.1688.com","biz_type":%s,"is_factory":%s,"is_super_factory":%s,'
    b'"is_gold_supplier":%s,"location":%s,"service_tags":%s,"tp_member":%s,"tp_year":%d,'
    b'"factory_inspection":%s,"shop_repurchase_rate":"%d.%d%%"}}'
)
SHOPS_PER_KIND = 256


def _render_shop(factory: int, tp_member: int, n: int) -> tuple[int, tuple[bytes, bytes], bytes]:
    """One supplier: (member number, its delivery_info without/with free postage, its shop_info)."""
    e = hashlib.blake2b(b"shop:%d:%d:%d" % (factory, tp_member, n), digest_size=64).digest()
    member = 1_000_000_000 + int.from_bytes(e[3:7], "big") % 3_000_000_000
    place = e[7] % len(_PLACES)
    weight = b"0" if e[22] < 128 else b"%.2f" % (0.05 + e[23] / 100)
    suttle = b"0" if e[22] < 128 else b"%.2f" % ((0.05 + e[23] / 100) * 0.9)
    delivery = tuple(_DELIVERY % (_J_PLACES[place], weight, suttle, _TRUE_FALSE[free]) for free in (0, 1))
    shop = _SHOP % (
        member,
        _J_COMPANIES[place][e[51] % len(_J_COMPANIES[place])],
        e[14:20].translate(_SLUG_TABLE),
        _J_FACTORY_BIZ if factory else _J_BIZ_TYPES[e[53] % 3],
        _TRUE_FALSE[factory],
        _TRUE_FALSE[factory and e[54] < 40],
        _TRUE_FALSE[e[55] < 100],
        _J_PLACES[place],
        _J_SERVICE_TAGS[e[20] % 18],
        _TRUE_FALSE[tp_member],
        1 + e[56] % 15 if tp_member else 0,
        _TRUE_FALSE[factory and e[57] < 128],
        e[58] % 60,
        e[59] % 10,
    )
    return member, (delivery[0], delivery[1]), shop


_TIER = b'{"begin_num":"%d","end_num":"%s","price":"%s"}'


def _price(cents: int) -> bytes:
    return b"%d.%02d" % divmod(cents, 100)


_SHOP_POOL: list[list[list[tuple[int, tuple[bytes, bytes], bytes]]]] = []


def _shops() -> list[list[list[tuple[int, tuple[bytes, bytes], bytes]]]]:
    """The supplier pool by [is_factory][tp_member]: items share shops, as on 1688 (built once)."""
    if not _SHOP_POOL:
        _SHOP_POOL.extend([[_render_shop(f, v, n) for n in range(SHOPS_PER_KIND)] for v in (0, 1)] for f in (0, 1))
    return _SHOP_POOL


class Catalogue:
    """The result set for one image identity: item i is a pure function of (identity, i)."""

    __slots__ = ("_cores", "_items", "_views", "identity", "item_base", "key", "total")

    def __init__(self, identity: str, total: int) -> None:
        self.identity = identity
        self.total = total
        self.key = bytes.fromhex(identity)
        self.item_base = int(identity[12:24], 16)
        self._cores: tuple[list[int], list[int], list[int]] | None = None
        self._views: dict[tuple[str, int], list[int]] = {}
        # index -> (JSON up to the title's value, title words index, model code + closing quote, JSON after it).
        # Only bytes and ints are kept: millions of them cost the garbage collector nothing.
        self._items: dict[int, tuple[bytes, int, bytes, bytes]] = {}

    # -- the few numbers that sorting and filtering need ---------------------------------
    def _digest(self, index: int) -> bytes:
        return hashlib.blake2b(self.key + index.to_bytes(4, "big"), digest_size=64).digest()

    def item_id(self, index: int) -> int:
        # Distinct for every index of one catalogue: 7919 is prime and does not divide 9e11.
        return 100_000_000_000 + (self.item_base + index * 7919) % 900_000_000_000

    @staticmethod
    def _core(d: bytes) -> tuple[int, int, int]:
        """(price in cents, yearly sales, filter bit mask) from an item's digest."""
        cents = int(150 * math.exp((d[0] << 8 | d[1]) * _PRICE_STEP))  # 1.50 .. 600.00, log-uniform
        sales = int(math.exp((d[2] << 8 | d[3]) * _SALES_STEP)) - 1  # 0 .. 20000, mostly small
        t0, t1, t2, t3, t4 = _THRESHOLDS
        mask = (d[8] < t0) | (d[9] < t1) << 1 | (d[10] < t2) << 2 | (d[11] < t3) << 3 | (d[12] < t4) << 4
        return cents, sales, mask

    def cores(self) -> tuple[list[int], list[int], list[int]]:
        if self._cores is None:
            cents, sales, masks = [], [], []
            for i in range(self.total):
                c, s, m = self._core(self._digest(i))
                cents.append(c)
                sales.append(s)
                masks.append(m)
            self._cores = (cents, sales, masks)
        return self._cores

    def view(self, sort: str, mask: int) -> Sequence[int]:
        """Item indices in `sort` order, keeping only items having every attribute in `mask`."""
        if sort == "default" and mask == 0:
            return range(self.total)
        cached = self._views.get((sort, mask))
        if cached is not None:
            return cached
        cents, sales, masks = self.cores()
        indices = [i for i in range(self.total) if masks[i] & mask == mask] if mask else list(range(self.total))
        key: Callable[[int], tuple[int, int]] | None = None
        if sort == "sales":
            key = lambda i: (-sales[i], self.item_id(i))  # noqa: E731
        elif sort == "price_up":
            key = lambda i: (cents[i], self.item_id(i))  # noqa: E731
        elif sort == "price_down":
            key = lambda i: (-cents[i], self.item_id(i))  # noqa: E731
        if key is not None:
            indices.sort(key=key)
        self._views[(sort, mask)] = indices
        return indices

    # -- whole items ---------------------------------------------------------------------
    def _build(self, index: int) -> tuple[bytes, int, bytes, bytes]:
        """Serialise item `index` straight from its digest bytes (no dicts: this is the hot path)."""
        d = self._digest(index)
        cents, sales, mask = self._core(d)
        item_id = self.item_id(index)
        words = (d[13] % 10) * 24 + (d[14] % 6) * 4 + d[15] % 4
        model = b'%c%03d"' % (65 + d[16] % 26, (d[17] << 8 | d[18]) % 1000)
        member, delivery, shop = _shops()[mask >> _FACTORY_BIT & 1][mask >> _VERIFIED_BIT & 1][d[19]]
        price = _price(cents)
        begin = 1 + d[20] % 10
        tiers = b""
        if d[21] & 3:
            starts = (begin, begin * 10, begin * 100)[: d[21] & 3]
            last = len(starts) - 1
            tiers = b",".join(
                [
                    _TIER % (start, b"" if t == last else b"%d" % (starts[t + 1] - 1), _price(cents * (20 - t) // 20))
                    for t, start in enumerate(starts)
                ]
            )
        month = sales * (d[22] % 20) // 100
        quarter = max(month, sales * (20 + d[23] % 40) // 100)
        gmv = str(cents * sales // 100)
        gmv_fuzzy = b"0" if gmv == "0" else b"%c%s+" % (ord(gmv[0]), b"0" * (len(gmv) - 1))
        drop_ship = b'"%s"' % _price(cents * (85 + d[24] % 16) // 100) if mask >> _DROPSHIP_BIT & 1 else b'""'
        tail = _TAIL % (
            _TITLE_HEADS["zh"][words],
            model[:-1],
            d[25:47].translate(_ALNUM_TABLE),
            member,
            _J_CATEGORIES[words // 24],
            price,
            drop_ship,
            price,
            price if d[47] < 160 else _price(cents + cents * (d[47] % 40) // 100),
            _J_BRANDS[d[48] % len(_BRANDS)],
            _J_TITLE_TAGS[d[49] % len(_TITLE_TAGS)],
            begin,
            tiers,
            gmv_fuzzy,
            sales,
            month,
            quarter,
            sales,
            sales * (10 + d[50] % 60) // 100,
            delivery[mask >> _FREE_SHIPPING_BIT & 1],
            d[51] % 10,
            d[52] % 6,
            _TRUE_FALSE[mask >> _NEW_BIT & 1],
            shop,
        )
        head = b'{"item_id":%d,"product_url":"https://detail.1688.com/offer/%d.html","title":' % (item_id, item_id)
        return head, words, model, tail

    def fragments(self, indices: Sequence[int], language: str) -> list[bytes]:
        """The JSON parts of items `indices` in `language`, ready to join (items built once, kept)."""
        heads = _TITLE_HEADS[language]
        items = self._items
        parts: list[bytes] = []
        for n, index in enumerate(indices):
            item = items.get(index)
            if item is None:
                item = items[index] = self._build(index)
            head, words, model, tail = item
            if n:
                parts.append(b",")
            parts += (head, heads[words], model, tail)
        return parts

    def fragment(self, index: int, language: str) -> bytes:
        """Item `index` as JSON in `language`."""
        return b"".join(self.fragments((index,), language))


_PRICE_STEP = math.log(400) / 65536
_SALES_STEP = math.log(20001) / 65536
_THRESHOLDS = tuple(_SHARE[name] for name in contract.FILTERS)
_DROPSHIP_BIT, _FACTORY_BIT, _VERIFIED_BIT, _FREE_SHIPPING_BIT, _NEW_BIT = (
    contract.FILTERS.index(name)
    for name in ("support_dropshipping", "is_factory", "verified_supplier", "free_shipping", "new_arrival")
)


class CatalogueCache:
    """A bounded LRU of catalogues, so a page costs slicing and joining, not generating."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, int], Catalogue] = OrderedDict()

    def get(self, img_url: str) -> Catalogue:
        identity = identity_of(img_url)
        hint = total_hint(img_url)
        total = hint if hint is not None else natural_total(identity)
        key = (identity, total)
        cat = self._data.get(key)
        if cat is None:
            cat = self._data[key] = Catalogue(identity, total)
            if len(self._data) > self.size:
                self._data.popitem(last=False)
        else:
            self._data.move_to_end(key)
        return cat

    def clear(self) -> None:
        self._data.clear()
