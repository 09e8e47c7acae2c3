"""Registry, connectivity state, conditions, events, time-series readings.

Revision ID: 0001_registry
Revises: 
Create Date: 2026-11-28 16:22:43.702610
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001_registry'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('conditions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('gateway_id', sa.String(length=64), nullable=True),
    sa.Column('sensor_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('restored_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conditions'))
    )
    with op.batch_alter_table('conditions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conditions_gateway_id'), ['gateway_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conditions_state'), ['state'], unique=False)
    # At most one open condition per (gateway, sensor, kind); NULL ids compare as ''.
    op.create_index(
        'uq_conditions_open', 'conditions',
        [sa.text("coalesce(gateway_id, '')"), sa.text("coalesce(sensor_id, '')"), 'kind'],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )

    op.create_table('districts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_districts'))
    )
    op.create_table('events',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('sensor_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('alarm_class', sa.String(length=16), nullable=False),
    sa.Column('device_ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('synced', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_gateway_id_received_at', ['gateway_id', 'received_at'], unique=False)
        batch_op.create_index('ix_events_gateway_id_seq', ['gateway_id', 'seq'], unique=False)
        batch_op.create_index('ix_events_received_at', ['received_at'], unique=False)

    op.create_table('gateway_state',
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.JSON(), nullable=True),
    sa.Column('last_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.PrimaryKeyConstraint('gateway_id', name=op.f('pk_gateway_state'))
    )
    with op.batch_alter_table('gateway_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_state_last_seen_at'), ['last_seen_at'], unique=False)

    op.create_table('readings',
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('sensor_id', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('gateway_id', 'sensor_id', 'metric', 'ts', name=op.f('pk_readings')),
    sqlite_with_rowid=False
    )
    op.create_table('readings_rollup',
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('sensor_id', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('bucket_ms', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.Column('min', sa.Double(), nullable=False),
    sa.Column('max', sa.Double(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('gateway_id', 'sensor_id', 'metric', 'ts', name=op.f('pk_readings_rollup')),
    sqlite_with_rowid=False
    )
    op.create_table('sensor_state',
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('sensor_id', sa.String(length=64), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('gateway_id', 'sensor_id', name=op.f('pk_sensor_state'))
    )
    with op.batch_alter_table('sensor_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sensor_state_last_seen_at'), ['last_seen_at'], unique=False)

    op.create_table('subdistricts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('district_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_subdistricts_district_id_districts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subdistricts'))
    )
    with op.batch_alter_table('subdistricts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subdistricts_district_id'), ['district_id'], unique=False)

    op.create_table('workstations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('subdistrict_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('oncall_phone', sa.String(length=32), nullable=False),
    sa.Column('day_start', sa.Time(), nullable=False),
    sa.Column('day_end', sa.Time(), nullable=False),
    sa.ForeignKeyConstraint(['subdistrict_id'], ['subdistricts.id'], name=op.f('fk_workstations_subdistrict_id_subdistricts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workstations'))
    )
    with op.batch_alter_table('workstations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workstations_subdistrict_id'), ['subdistrict_id'], unique=False)

    op.create_table('homes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('workstation_id', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('residents', sa.JSON(), nullable=False),
    sa.Column('emergency_contacts', sa.JSON(), nullable=False),
    sa.Column('key_holder', sa.JSON(), nullable=True),
    sa.Column('care_notes', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['workstation_id'], ['workstations.id'], name=op.f('fk_homes_workstation_id_workstations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_homes'))
    )
    with op.batch_alter_table('homes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_homes_workstation_id'), ['workstation_id'], unique=False)

    op.create_table('gateways',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('home_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['home_id'], ['homes.id'], name=op.f('fk_gateways_home_id_homes'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateways'))
    )
    with op.batch_alter_table('gateways', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateways_home_id'), ['home_id'], unique=False)

    op.create_table('sensors',
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('interval_s', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['gateway_id'], ['gateways.id'], name=op.f('fk_sensors_gateway_id_gateways'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gateway_id', 'id', name=op.f('pk_sensors'))
    )


def downgrade() -> None:
    op.drop_index('uq_conditions_open', table_name='conditions')
    op.drop_table('sensors')
    with op.batch_alter_table('gateways', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateways_home_id'))

    op.drop_table('gateways')
    with op.batch_alter_table('homes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_homes_workstation_id'))

    op.drop_table('homes')
    with op.batch_alter_table('workstations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workstations_subdistrict_id'))

    op.drop_table('workstations')
    with op.batch_alter_table('subdistricts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subdistricts_district_id'))

    op.drop_table('subdistricts')
    with op.batch_alter_table('sensor_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sensor_state_last_seen_at'))

    op.drop_table('sensor_state')
    op.drop_table('readings_rollup')
    op.drop_table('readings')
    with op.batch_alter_table('gateway_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_state_last_seen_at'))

    op.drop_table('gateway_state')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_received_at')
        batch_op.drop_index('ix_events_gateway_id_seq')
        batch_op.drop_index('ix_events_gateway_id_received_at')

    op.drop_table('events')
    op.drop_table('districts')
    with op.batch_alter_table('conditions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conditions_state'))
        batch_op.drop_index(batch_op.f('ix_conditions_gateway_id'))

    op.drop_table('conditions')
