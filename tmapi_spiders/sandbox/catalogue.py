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
def _price_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _title(lang: str, noun: int, adj: int, mat: int, model: str) -> str:
    n, a, m = _NOUNS[lang][noun], _ADJECTIVES[lang][adj], _MATERIALS[lang][mat]
    words = (n, a, m) if lang in _NOUN_FIRST else (a, m, n)
    return ("" if lang in _NO_SPACES else " ").join(words) + " " + model


class Catalogue:
    """The result set for one image identity: item i is a pure function of (identity, i)."""

    __slots__ = ("_cores", "_fragments", "_items", "_views", "identity", "item_base", "key", "total")

    def __init__(self, identity: str, total: int) -> None:
        self.identity = identity
        self.total = total
        self.key = bytes.fromhex(identity)
        self.item_base = int(identity[12:24], 16)
        self._cores: tuple[list[int], list[int], list[int]] | None = None
        self._views: dict[tuple[str, int], list[int]] = {}
        self._items: dict[int, tuple[dict[str, Any], tuple[int, int, int, str]]] = {}
        self._fragments: dict[str, dict[int, bytes]] = {}

    # -- the few numbers that sorting and filtering need ---------------------------------
    def _digest(self, index: int) -> bytes:
        return hashlib.blake2b(self.key + index.to_bytes(4, "big"), digest_size=64).digest()

    def item_id(self, index: int) -> int:
        # Distinct for every index of one catalogue: 7919 is prime and does not divide 9e11.
        return 100_000_000_000 + (self.item_base + index * 7919) % 900_000_000_000

    @staticmethod
    def _core(d: bytes) -> tuple[int, int, int]:
        """(price in cents, yearly sales, filter bit mask) from an item's digest."""
        u = int.from_bytes(d[0:4], "big") / 2**32
        cents = int(150 * math.exp(u * math.log(400)))  # 1.50 .. 600.00, log-uniform
        s = int.from_bytes(d[4:8], "big") / 2**32
        sales = int(math.exp(s * math.log(20001))) - 1  # 0 .. 20000, mostly small
        mask = 0
        for n, name in enumerate(contract.FILTERS):
            if d[8 + n] < _SHARE[name]:
                mask |= 1 << n
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
    def _build(self, index: int) -> tuple[dict[str, Any], tuple[int, int, int, str]]:
        d = self._digest(index)
        cents, sales, mask = self._core(d)
        e = hashlib.blake2b(d, digest_size=64).digest()  # more entropy for the cosmetic fields
        item_id = self.item_id(index)
        noun, adj, mat = d[13] % 10, d[14] % 6, d[15] % 4
        model = f"{_ALNUM[e[0] % 26]}{int.from_bytes(e[1:3], 'big') % 1000:03d}"
        member = 1_000_000_000 + int.from_bytes(e[3:7], "big") % 3_000_000_000
        factory = bool(mask & FILTER_BITS["is_factory"])
        dropship = bool(mask & FILTER_BITS["support_dropshipping"])
        place = _PLACES[e[7] % len(_PLACES)]
        origin_cents = cents if e[8] < 160 else cents + cents * (e[8] % 40) // 100
        tiers = e[9] % 4
        begin = 1 + e[10] % 10
        quantity_prices = []
        if tiers:
            starts = [begin, begin * 10, begin * 100][:tiers]
            for t, start in enumerate(starts):
                end = "" if t == tiers - 1 else str(starts[t + 1] - 1)
                quantity_prices.append(
                    {"begin_num": str(start), "end_num": end, "price": _price_text(cents * (100 - 5 * t) // 100)}
                )
        month = sales * (e[11] % 20) // 100
        quarter = max(month, sales * (20 + e[12] % 40) // 100)
        orders = sales * (10 + e[13] % 60) // 100
        gmv = cents * sales // 100
        gmv_fuzzy = "0" if gmv == 0 else f"{10 ** int(math.log10(gmv)) * int(str(gmv)[0])}+"
        tp_member = bool(mask & FILTER_BITS["verified_supplier"])
        slug = "".join(_SLUG[b % 36] for b in e[14:20])
        tags = _SERVICE_TAGS[e[20] % 6 : e[20] % 6 + e[21] % 3]
        weight = 0 if e[22] < 128 else round(0.05 + e[23] / 100, 2)
        item = {
            "item_id": item_id,
            "product_url": f"https://detail.1688.com/offer/{item_id}.html",
            "title": "",
            "title_origin": "",
            "img": "https://cbu01.alicdn.com/img/ibank/O1CN01"
            + "".join(_ALNUM[b % 62] for b in e[24:46])
            + f"_!!{member}-0-cib.jpg",
            "category_path": _CATEGORIES[noun],
            "price": _price_text(cents),
            "price_info": {
                "drop_ship_price": _price_text(cents * (85 + e[46] % 16) // 100) if dropship else "",
                "wholesale_price": _price_text(cents),
                "origin_price": _price_text(origin_cents),
            },
            "brand": _BRANDS[e[47] % len(_BRANDS)],
            "title_tags": list(_TITLE_TAGS[e[48] % len(_TITLE_TAGS)]),
            "quantity_begin": begin,
            "quantity_prices": quantity_prices,
            "sale_info": {
                "gmv_fuzzy": gmv_fuzzy,
                "gmv_30days": 0,
                "gmv_30days_cb": 0,
                "sale_quantity": sales,
                "sale_quantity_month": month,
                "sale_quantity_90days": quarter,
                "sale_quantity_360days": sales,
                "orders_count": orders,
            },
            "type": "normal",
            "delivery_info": {
                "area_from": place,
                "weight": weight,
                "suttle_weight": round(weight * 0.9, 2) if weight else 0,
                "free_postage": bool(mask & FILTER_BITS["free_shipping"]),
            },
            "item_repurchase_rate": f"{e[49] % 10 / 10:.1f}",
            "goods_score": e[50] % 6,
            "image_dsm_score": 0,
            "primary_rank_score": 0,
            "super_new_product": bool(mask & FILTER_BITS["new_arrival"]),
            "shop_info": {
                "login_id": None,
                "member_id": f"b2b-{member}",
                "company_name": _CITY_ZH[e[7] % len(_PLACES)]
                + _COMPANY_WORDS[e[51] % len(_COMPANY_WORDS)]
                + _COMPANY_KINDS[e[52] % len(_COMPANY_KINDS)],
                "shop_url": f"http://{slug}.1688.com",
                "biz_type": "生产加工" if factory else _BIZ_TYPES[e[53] % 3],
                "is_factory": factory,
                "is_super_factory": factory and e[54] < 40,
                "is_gold_supplier": e[55] < 100,
                "location": place,
                "service_tags": list(tags),
                "tp_member": tp_member,
                "tp_year": 1 + e[56] % 15 if tp_member else 0,
                "factory_inspection": factory and e[57] < 128,
                "shop_repurchase_rate": f"{e[58] % 60 + e[59] % 10 / 10:.1f}%",
            },
        }
        item["title_origin"] = _title("zh", noun, adj, mat, model)
        return item, (noun, adj, mat, model)

    def fragment(self, index: int, language: str) -> bytes:
        """Item `index` serialised as JSON in `language`, built once and kept."""
        per_lang = self._fragments.get(language)
        if per_lang is None:
            per_lang = self._fragments[language] = {}
        frag = per_lang.get(index)
        if frag is None:
            built = self._items.get(index)
            if built is None:
                built = self._items[index] = self._build(index)
            item, words = built
            item["title"] = _title(language, *words)
            frag = per_lang[index] = dumps(item)
        return frag


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
