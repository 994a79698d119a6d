"""SnowflakeWarehouse under the SDK's mocks (inside every region stack)."""

from __future__ import annotations

from tests.conftest import Plan

STACK = "region-eu-central"


def test_database_schemas_and_warehouses(fleet: Plan) -> None:
    database = fleet.one(STACK, "snowflake:index/database:Database", "region-warehouse-database")
    assert database.inputs["name"] == "PLATFORM_EU_CENTRAL"
    schemas = {r.inputs["name"] for r in fleet.resources(STACK, "snowflake:index/schema:Schema")}
    assert schemas == {"RAW", "ANALYTICS"}
    monitor = fleet.one(STACK, "snowflake:index/resourceMonitor:ResourceMonitor", "region-warehouse-monitor")
    warehouses = fleet.resources(STACK, "snowflake:index/warehouse:Warehouse")
    assert len(warehouses) == 3
    for warehouse in warehouses:
        assert 0 < warehouse.inputs["autoSuspend"] <= 300
        assert warehouse.property_dependencies["resourceMonitor"] == [monitor.urn]
    assert monitor.inputs["suspendTrigger"] == 100


def test_usage_table_is_guarded_by_a_partner_row_access_policy(fleet: Plan) -> None:
    policy = fleet.one(STACK, "snowflake:index/rowAccessPolicy:RowAccessPolicy", "region-warehouse-partner-rows")
    assert "CURRENT_ROLE()" in policy.inputs["body"]
    assert "^PARTNER_(.+)_READER$" in policy.inputs["body"]
    attach = fleet.one(STACK, "snowflake:index/execute:Execute", "region-warehouse-usage-row-policy")
    assert attach.inputs["execute"] == (
        "ALTER TABLE PLATFORM_EU_CENTRAL.RAW.USAGE_EVENTS ADD ROW ACCESS POLICY "
        "PLATFORM_EU_CENTRAL.RAW.PARTNER_ROWS ON (PARTNER_ID)"
    )
    assert attach.inputs["revert"].startswith("ALTER TABLE PLATFORM_EU_CENTRAL.RAW.USAGE_EVENTS DROP ROW ACCESS POLICY")
    api = fleet.one(STACK, "snowflake:index/execute:Execute", "region-warehouse-api-row-policy")
    assert "RAW.API_REQUESTS ADD ROW ACCESS POLICY" in api.inputs["execute"]


def test_success_metric_views(fleet: Plan) -> None:
    views = {r.inputs["name"]: r.inputs for r in fleet.resources(STACK, "snowflake:index/view:View")}
    assert set(views) == {"MRR", "ACTIVE_PARTNERS", "MINUTES_PER_PARTNER", "USAGE_BY_PERIOD", "API_REQUESTS_BY_PERIOD"}
    assert all(v["isSecure"] == "true" for v in views.values())
    assert "BASE_FEE_MINOR" in views["MRR"]["statement"]


def test_platform_roles(fleet: Plan) -> None:
    roles = {r.inputs["name"] for r in fleet.resources(STACK, "snowflake:index/accountRole:AccountRole")}
    assert roles == {
        "PLATFORM_EU_CENTRAL_LOADER",
        "PLATFORM_EU_CENTRAL_ANALYST",
        "PLATFORM_EU_CENTRAL_PAYOUTS",
        "PLATFORM_EU_CENTRAL_ADMIN",
    }
