# ruff: noqa: RUF001  (Chinese text uses the full-width comma)
"""Synthetic Chinese names, addresses and phone numbers for generated registries.

Every value is drawn from a caller's ``random.Random`` so that a seed reproduces a district.
None of it is real personal data: names are random surname + given-name characters and
phone numbers use the 199 0000 xxxx style test range.
"""

from __future__ import annotations

import random

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤"
)
#: Given-name characters common in the generation born 1925-1960.
OLD_GIVEN = "秀英兰珍芳华明国建德文桂凤玉淑美金福宝荣春红梅丽海林军平生忠根妹娣宝发财富贵仁义礼智信勇"
YOUNG_GIVEN = "伟静敏磊洋艳勇杰娟涛超明霞刚平燕辉玲丹萍鹏华红军健宇浩婷雪琳晨"
ROADS = (
    "张杨路", "浦东南路", "东方路", "崂山路", "潍坊路", "源深路", "福山路", "桃林路", "峨山路", "南泉路",
    "羽山路", "沂南路", "锦绣路", "杨高路", "龙阳路", "川沙路", "周浦路", "金桥路", "博山路", "浦电路",
    "昌邑路", "东昌路", "乳山路", "栖霞路", "临沂路", "德州路", "云台路", "上南路", "成山路", "凌兆路",
)  # fmt: skip
SUBDISTRICTS = (
    "陆家嘴", "潍坊新村", "塘桥", "洋泾", "花木", "金杨新村", "上钢新村", "南码头路", "沪东新村", "周家渡",
    "浦兴路", "东明路", "高行", "高桥", "北蔡", "合庆", "唐镇", "曹路", "金桥", "高东",
    "张江", "三林", "惠南", "周浦", "新场", "大团", "康桥", "航头", "祝桥", "泥城",
    "宣桥", "书院", "万祥", "老港", "川沙新", "南汇新城",
)  # fmt: skip
NEIGHBOURHOODS = (
    "东园", "南苑", "竹园", "梅园", "松林", "明珠", "锦华", "福山", "崂山", "阳光",
    "紫叶", "华丰", "新村", "泾东", "金桥湾", "桃园", "海防", "东昌", "仁恒", "仁和",
)  # fmt: skip
RELATIONS = (
    "daughter",
    "son",
    "niece",
    "nephew",
    "granddaughter",
    "grandson",
    "neighbour",
    "daughter_in_law",
)
CARE_NOTES = (
    "", "", "", "听力差，请大声敲门", "行动不便，使用助行器", "夜间服用安眠药，可能听不到门铃",
    "钥匙由隔壁邻居保管", "糖尿病，注意低血糖", "认知障碍，可能不认得来访者", "养猫一只，开门注意",
)  # fmt: skip


def person_name(rng: random.Random, old: bool) -> str:
    pool = OLD_GIVEN if old else YOUNG_GIVEN
    given = "".join(rng.choice(pool) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def mobile(rng: random.Random) -> str:
    return f"+86199{rng.randrange(10**8):08d}"


def landline(rng: random.Random) -> str:
    return f"+8621{rng.randrange(5 * 10**7, 7 * 10**7):08d}"


def address(rng: random.Random) -> str:
    return f"{rng.choice(ROADS)}{rng.randint(1, 1999)}弄{rng.randint(1, 60)}号{rng.randint(1, 6)}0{rng.randint(1, 4)}室"
