"""Routing plan: who is told about an alarm, computed from plain registry data and policy.

Home → its workstation. By day the workstation's console and its duty phone; at night the
workstation's on-call phone and its subdistrict center (console and phone, staffed 24 h).
Emergency contacts and volunteers are added per alarm class. Escalation tiers
(``subdistrict``, ``district``) reuse the same recipient builders. An alarm from a gateway
that is not in the registry still goes somewhere: to the district center.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hub.alarms.schedule import DutyHours, Shift
from hub.notify.names import ChannelName
from protocols import AlarmClass


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    phone: str
    relation: str = ""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A third-party endpoint subscribed to the alarms of one region."""

    url: str
    region_kind: str  #: workstation | subdistrict | district
    region_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """Everything the registry knows that routing needs, for one alarm's home."""

    district_id: str
    district_phone: str | None
    timezone: str
    subdistrict_id: str | None = None
    subdistrict_phone: str | None = None
    workstation_id: str | None = None
    workstation_phone: str | None = None
    workstation_oncall_phone: str | None = None
    day_start: str | None = "08:00"  #: None (both): no day staff, see hub.registry.duty
    day_end: str | None = "20:00"
    home_id: str | None = None
    emergency_contacts: tuple[Contact, ...] = ()
    volunteers: tuple[Contact, ...] = ()
    webhooks: tuple[Webhook, ...] = ()

    @property
    def registered(self) -> bool:
        return self.workstation_id is not None


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: ChannelName
    address: str  #: console region "workstation:ws-0001", phone number, webhook URL, gateway id
    role: str  #: workstation | workstation_oncall | subdistrict | district | family | volunteer | webhook
    tier: str = "initial"  #: initial | subdistrict | district (which escalation step added it)


@dataclass(frozen=True, slots=True)
class ClassPolicy:
    """What an alarm class triggers besides the workstation."""

    phone_by_day: bool = True  #: call the workstation duty phone by day
    night_oncall: bool = True  #: call the on-call phone at night
    night_subdistrict: bool = True  #: involve the subdistrict center at night
    family: bool = False
    volunteers: bool = False
    voice: bool = False  #: phone recipients get a voice call as well as an SMS


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    per_class: dict[AlarmClass, ClassPolicy] = field(
        default_factory=lambda: {
            AlarmClass.ALARM: ClassPolicy(family=True, volunteers=True, voice=True),
            AlarmClass.SUPERVISORY: ClassPolicy(phone_by_day=False, night_oncall=False),
            AlarmClass.TROUBLE: ClassPolicy(phone_by_day=False, night_oncall=False, night_subdistrict=False),
            AlarmClass.TEST: ClassPolicy(phone_by_day=False, night_oncall=False, night_subdistrict=False),
        }
    )

    def for_class(self, cls: AlarmClass) -> ClassPolicy:
        return self.per_class.get(cls, ClassPolicy())


DEFAULT_POLICY = RoutingPolicy()


def _phone(number: str | None, role: str, voice: bool, tier: str) -> list[Recipient]:
    if not number:
        return []
    out = [Recipient(ChannelName.SMS, number, role, tier)]
    if voice:
        out.append(Recipient(ChannelName.VOICE, number, role, tier))
    return out


def _webhooks(ctx: RoutingContext, kind: str, region_id: str | None, tier: str) -> list[Recipient]:
    return [
        Recipient(ChannelName.WEBHOOK, w.url, "webhook", tier)
        for w in ctx.webhooks
        if w.region_kind == kind and w.region_id == region_id
    ]


def tier_recipients(ctx: RoutingContext, tier: str, voice: bool) -> list[Recipient]:
    """Recipients of an escalation tier: the subdistrict or district center."""
    if tier == "subdistrict" and ctx.subdistrict_id:
        return [
            Recipient(ChannelName.CONSOLE, f"subdistrict:{ctx.subdistrict_id}", "subdistrict", tier),
            *_phone(ctx.subdistrict_phone, "subdistrict", voice, tier),
            *_webhooks(ctx, "subdistrict", ctx.subdistrict_id, tier),
        ]
    # the district is the last resort, also for a subdistrict tier without a subdistrict
    return [
        Recipient(ChannelName.CONSOLE, f"district:{ctx.district_id}", "district", tier),
        *_phone(ctx.district_phone, "district", voice, tier),
        *_webhooks(ctx, "district", ctx.district_id, tier),
    ]


def plan_route(
    cls: AlarmClass, ctx: RoutingContext, at: datetime, policy: RoutingPolicy = DEFAULT_POLICY
) -> tuple[Shift, list[Recipient]]:
    """The initial recipients of a new alarm of class ``cls`` raised at ``at``."""
    p = policy.for_class(cls)
    if not ctx.registered:
        first = [Recipient(r.channel, r.address, r.role) for r in tier_recipients(ctx, "district", p.voice)]
        return Shift.NIGHT, _dedupe(first)
    shift = DutyHours.of(ctx.day_start, ctx.day_end, ctx.timezone).shift_at(at)
    ws = ctx.workstation_id
    out = [Recipient(ChannelName.CONSOLE, f"workstation:{ws}", "workstation")]
    if shift is Shift.DAY:
        if p.phone_by_day:
            out += _phone(ctx.workstation_phone, "workstation", p.voice, "initial")
    else:
        if p.night_oncall:
            out += _phone(
                ctx.workstation_oncall_phone or ctx.workstation_phone,
                "workstation_oncall",
                p.voice,
                "initial",
            )
        if p.night_subdistrict and ctx.subdistrict_id:
            out.append(Recipient(ChannelName.CONSOLE, f"subdistrict:{ctx.subdistrict_id}", "subdistrict"))
            out += _phone(ctx.subdistrict_phone, "subdistrict", p.voice, "initial")
    # third parties subscribed to any region enclosing the home get every alarm of it
    out += _webhooks(ctx, "workstation", ws, "initial")
    out += _webhooks(ctx, "subdistrict", ctx.subdistrict_id, "initial")
    out += _webhooks(ctx, "district", ctx.district_id, "initial")
    if p.family:
        out += [Recipient(ChannelName.SMS, c.phone, "family") for c in ctx.emergency_contacts if c.phone]
    if p.volunteers:
        out += [Recipient(ChannelName.SMS, v.phone, "volunteer") for v in ctx.volunteers if v.phone]
    return shift, _dedupe(out)


def _dedupe(recipients: list[Recipient]) -> list[Recipient]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in recipients:
        if (r.channel, r.address) not in seen:
            seen.add((r.channel, r.address))
            out.append(r)
    return out


def dedupe_against(new: list[Recipient], already: set[tuple[str, str]]) -> list[Recipient]:
    """Escalation recipients not already notified for this alarm."""
    return [r for r in _dedupe(new) if (r.channel, r.address) not in already]
