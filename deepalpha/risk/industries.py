"""Industry classification used by the risk model.

`SW_L1` is the canonical list of ~31 industry groups modelled on Shenwan 2021 level 1:
``(key, Chinese name)``. The synthetic market writes these Chinese names as its industries; the
real data's Tushare names are mapped onto them (see `TUSHARE_TO_SW`).
"""

from __future__ import annotations

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
