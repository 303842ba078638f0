"""Industry classification used by the risk model.

`SW_L1` is the canonical list of 31 industry groups modelled on Shenwan 2021 level 1:
``(key, Chinese name)``. The synthetic market writes these Chinese names (or keys) as its
industries; the real data's Tushare names (110 of them, ``industry/stock_basic.csv`` column
``行业``) are mapped onto them by `TUSHARE_TO_SW`, and CSRC 2012 codes (``J66货币金融服务``) by
`csrc_to_group` as a fallback for stocks without a Tushare name.

Deviation from CNE6: CNE6 uses a point-in-time GICS-like hierarchy; our classification is a
static 2026 snapshot mapped by hand onto SW2021-like groups (so it is not point in time).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from deepalpha.errors import DataError

SW_L1: tuple[tuple[str, str], ...] = (
    ("agriculture", "农林牧渔"),
    ("basic_chemicals", "基础化工"),
    ("steel", "钢铁"),
    ("nonferrous_metals", "有色金属"),
    ("electronics", "电子"),
    ("home_appliances", "家用电器"),
    ("food_beverage", "食品饮料"),
    ("textiles_apparel", "纺织服饰"),
    ("light_manufacturing", "轻工制造"),
    ("pharma_biotech", "医药生物"),
    ("utilities", "公用事业"),
    ("transportation", "交通运输"),
    ("real_estate", "房地产"),
    ("retail", "商贸零售"),
    ("social_services", "社会服务"),
    ("conglomerates", "综合"),
    ("building_materials", "建筑材料"),
    ("construction", "建筑装饰"),
    ("power_equipment", "电力设备"),
    ("defense", "国防军工"),
    ("computers", "计算机"),
    ("media", "传媒"),
    ("telecom", "通信"),
    ("banks", "银行"),
    ("non_bank_finance", "非银金融"),
    ("autos", "汽车"),
    ("machinery", "机械设备"),
    ("coal", "煤炭"),
    ("petrochemicals", "石油石化"),
    ("environmental", "环保"),
    ("beauty_care", "美容护理"),
)

GROUP_KEYS: tuple[str, ...] = tuple(k for k, _ in SW_L1)
"""The 31 group keys in canonical order (the order of industry factors in the risk model)."""

_GROUP_OF_TUSHARE: dict[str, tuple[str, ...]] = {
    "agriculture": ("农业综合", "种植业", "饲料", "渔业", "林业"),
    "basic_chemicals": ("化工原料", "农药化肥", "塑料", "染料涂料", "化纤", "橡胶"),
    "steel": ("普钢", "钢加工", "特种钢"),
    "nonferrous_metals": ("小金属", "铝", "铜", "铅锌", "黄金"),
    "electronics": ("元器件", "半导体"),
    "home_appliances": ("家用电器",),
    "food_beverage": ("食品", "乳制品", "白酒", "软饮料", "红黄酒", "啤酒"),
    "textiles_apparel": ("服饰", "纺织"),
    "light_manufacturing": ("家居用品", "广告包装", "文教休闲", "造纸"),
    "pharma_biotech": ("医疗保健", "化学制药", "生物制药", "中成药", "医药商业"),
    "utilities": ("供气供热", "火力发电", "新型电力", "水力发电", "水务"),
    "transportation": (
        "仓储物流",
        "水运",
        "路桥",
        "港口",
        "空运",
        "公共交通",
        "铁路",
        "机场",
        "公路",
    ),
    "real_estate": ("区域地产", "全国地产", "园区开发", "房产服务"),
    "retail": ("百货", "商贸代理", "其他商业", "超市连锁", "批发业", "商品城", "电器连锁"),
    "social_services": ("旅游景点", "酒店餐饮", "旅游服务"),
    "conglomerates": ("综合类",),
    "building_materials": ("矿物制品", "其他建材", "水泥", "玻璃", "陶瓷"),
    "construction": ("建筑工程", "装修装饰"),
    "power_equipment": ("电气设备",),
    "defense": ("航空", "船舶"),
    "computers": ("软件服务", "IT设备", "互联网"),
    "media": ("影视音像", "出版业"),
    "telecom": ("通信设备", "电信运营"),
    "banks": ("银行",),
    "non_bank_finance": ("证券", "多元金融", "保险"),
    "autos": ("汽车配件", "汽车整车", "摩托车", "汽车服务"),
    "machinery": (
        "专用机械",
        "机械基件",
        "电器仪表",
        "运输设备",
        "工程机械",
        "机床制造",
        "化工机械",
        "农用机械",
        "纺织机械",
        "轻工机械",
    ),
    "coal": ("煤炭开采", "焦炭加工"),
    "petrochemicals": ("石油开采", "石油加工", "石油贸易"),
    "environmental": ("环境保护",),
    "beauty_care": ("日用化工",),
}

TUSHARE_TO_SW: dict[str, str] = {
    name: group for group, names in _GROUP_OF_TUSHARE.items() for name in names
}
"""Tushare industry name (110 names) -> SW2021-like group key."""

# Group names and keys map to themselves (the synthetic market writes group names).
_SELF: dict[str, str] = {**{k: k for k, _ in SW_L1}, **{cn: k for k, cn in SW_L1}}

# CSRC 2012: sector letter, refined by the two-digit division inside manufacturing (C) and
# mining (B). Used only for stocks that have no Tushare name.
_CSRC_LETTER: dict[str, str] = {
    "A": "agriculture",
    "B": "coal",
    "C": "machinery",
    "D": "utilities",
    "E": "construction",
    "F": "retail",
    "G": "transportation",
    "H": "social_services",
    "I": "computers",
    "J": "non_bank_finance",
    "K": "real_estate",
    "L": "social_services",
    "M": "social_services",
    "N": "environmental",
    "O": "social_services",
    "P": "social_services",
    "Q": "pharma_biotech",
    "R": "media",
    "S": "conglomerates",
}
_CSRC_DIVISION: dict[str, str] = {
    "B07": "petrochemicals",
    "B08": "steel",
    "B09": "nonferrous_metals",
    "B10": "building_materials",
    "B11": "petrochemicals",
    **{f"C{d}": "food_beverage" for d in (13, 14, 15, 16)},
    **{f"C{d}": "textiles_apparel" for d in (17, 18, 19)},
    **{f"C{d}": "light_manufacturing" for d in (20, 21, 22, 23, 24)},
    "C25": "petrochemicals",
    "C26": "basic_chemicals",
    "C27": "pharma_biotech",
    "C28": "basic_chemicals",
    "C29": "basic_chemicals",
    "C30": "building_materials",
    "C31": "steel",
    "C32": "nonferrous_metals",
    "C33": "machinery",
    "C34": "machinery",
    "C35": "machinery",
    "C36": "autos",
    "C37": "defense",
    "C38": "power_equipment",
    "C39": "electronics",
    "C40": "machinery",
    "J66": "banks",
    "N77": "environmental",
}


def csrc_to_group(code: str) -> str | None:
    """CSRC 2012 code (``C39计算机...`` or ``C39``) -> group key, or None when unknown."""
    s = str(code).strip().upper()
    if not s or s in ("NONE", "NULL", "NAN"):
        return None
    if s[:3] in _CSRC_DIVISION:
        return _CSRC_DIVISION[s[:3]]
    return _CSRC_LETTER.get(s[:1])


def map_industries(
    names: Iterable[str | None],
    csrc: Iterable[str | None] | None = None,
    *,
    file: str | None = None,
) -> np.ndarray:
    """Map industry names to group keys.

    Parameters
    ----------
    names : str[N]
        Tushare names, group keys or group Chinese names; None/empty falls back to `csrc`.
    csrc : str[N], optional
        CSRC 2012 codes used where `names` is missing or empty.

    Returns
    -------
    str[N] (object) group keys from `GROUP_KEYS`.

    Raises
    ------
    DataError listing every name that maps to no group.
    """
    names = list(names)
    csrc_l = [None] * len(names) if csrc is None else list(csrc)
    if len(csrc_l) != len(names):
        raise DataError(f"{len(names)} industry names but {len(csrc_l)} CSRC codes", file=file)
    out = np.empty(len(names), dtype=object)
    bad: set[str] = set()
    for i, (n, c) in enumerate(zip(names, csrc_l, strict=True)):
        key = None
        s = "" if n is None else str(n).strip()
        if s and s.lower() not in ("nan", "none", "null"):
            key = TUSHARE_TO_SW.get(s) or _SELF.get(s)
            if key is None:
                bad.add(s)
                continue
        elif c is not None:
            key = csrc_to_group(c)
            if key is None:
                bad.add(f"csrc:{c}")
                continue
        else:
            bad.add("<missing>")
            continue
        out[i] = key
    if bad:
        raise DataError(
            f"{len(bad)} industry names map to no group: {sorted(bad)}", file=file, field="industry"
        )
    return out


def industry_ids(groups: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Group keys ``str[N]`` -> (``int16[N]`` ids into the returned names, names).

    Names are the groups present, in `GROUP_KEYS` order (unknown keys appended sorted);
    missing entries (None / "") get -1.
    """
    g = np.asarray(groups, dtype=object)
    present = {str(x) for x in g if x is not None and str(x) != ""}
    names = tuple(k for k in GROUP_KEYS if k in present) + tuple(sorted(present - set(GROUP_KEYS)))
    pos = {k: i for i, k in enumerate(names)}
    ids = np.array([pos.get(str(x), -1) if x is not None else -1 for x in g], dtype=np.int16)
    return ids, names
