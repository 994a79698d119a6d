# ruff: noqa: E501
"""pulumi-snowflake's preview-gated resource types: the provider refuses to manage one unless its feature name is
in the provider's `preview_features_enabled`. One table, used by the program (to enable what it uses) and by the
`snowflake-preview-features` policy (to fail a plan that uses a gated type on a provider that has not enabled it).

Source: the installed provider, pulumi-snowflake 2.22.0 (`Provider(preview_features_enabled=...)`: "Preview
features that can be enabled are: ..."), which follows Snowflake-Labs/terraform-provider-snowflake's
v1-preparations/LIST_OF_PREVIEW_FEATURES_FOR_V1.md; tokens are those of the resource classes of that SDK
(read 2026-11-29). Data sources are left out: the program calls none. tests/components/test_snowflake_preview.py
checks this table against whatever provider is installed, so an upgrade that gates or promotes a type fails there.
"""

from __future__ import annotations

from collections.abc import Iterable

PREVIEW_FEATURES: dict[str, str] = {
    "snowflake:index/accountPasswordPolicyAttachment:AccountPasswordPolicyAttachment": "snowflake_account_password_policy_attachment_resource",
    "snowflake:index/alert:Alert": "snowflake_alert_resource",
    "snowflake:index/apiIntegration:ApiIntegration": "snowflake_api_integration_resource",
    "snowflake:index/cortexSearchService:CortexSearchService": "snowflake_cortex_search_service_resource",
    "snowflake:index/dynamicTable:DynamicTable": "snowflake_dynamic_table_resource",
    "snowflake:index/emailNotificationIntegration:EmailNotificationIntegration": "snowflake_email_notification_integration_resource",
    "snowflake:index/externalAccessIntegration:ExternalAccessIntegration": "snowflake_external_access_integration_resource",
    "snowflake:index/externalFunction:ExternalFunction": "snowflake_external_function_resource",
    "snowflake:index/externalTable:ExternalTable": "snowflake_external_table_resource",
    "snowflake:index/failoverGroup:FailoverGroup": "snowflake_failover_group_resource",
    "snowflake:index/fileFormat:FileFormat": "snowflake_file_format_resource",
    "snowflake:index/functionJava:FunctionJava": "snowflake_function_java_resource",
    "snowflake:index/functionJavascript:FunctionJavascript": "snowflake_function_javascript_resource",
    "snowflake:index/functionPython:FunctionPython": "snowflake_function_python_resource",
    "snowflake:index/functionScala:FunctionScala": "snowflake_function_scala_resource",
    "snowflake:index/functionSql:FunctionSql": "snowflake_function_sql_resource",
    "snowflake:index/hybridTable:HybridTable": "snowflake_hybrid_table_resource",
    "snowflake:index/icebergTable:IcebergTable": "snowflake_iceberg_table_resource",
    "snowflake:index/icebergTableFromAwsGlue:IcebergTableFromAwsGlue": "snowflake_iceberg_table_from_aws_glue_resource",
    "snowflake:index/icebergTableFromDeltaFiles:IcebergTableFromDeltaFiles": "snowflake_iceberg_table_from_delta_files_resource",
    "snowflake:index/icebergTableFromFiles:IcebergTableFromFiles": "snowflake_iceberg_table_from_files_resource",
    "snowflake:index/icebergTableFromRest:IcebergTableFromRest": "snowflake_iceberg_table_from_rest_resource",
    "snowflake:index/intelligenceCortexAgentAttachment:IntelligenceCortexAgentAttachment": "snowflake_intelligence_cortex_agent_attachment_resource",
    "snowflake:index/jobService:JobService": "snowflake_job_service_resource",
    "snowflake:index/managedAccount:ManagedAccount": "snowflake_managed_account_resource",
    "snowflake:index/materializedView:MaterializedView": "snowflake_materialized_view_resource",
    "snowflake:index/networkPolicyAttachment:NetworkPolicyAttachment": "snowflake_network_policy_attachment_resource",
    "snowflake:index/notebook:Notebook": "snowflake_notebook_resource",
    "snowflake:index/notificationIntegration:NotificationIntegration": "snowflake_notification_integration_resource",
    "snowflake:index/objectParameter:ObjectParameter": "snowflake_object_parameter_resource",
    "snowflake:index/openflowConnector:OpenflowConnector": "snowflake_openflow_connector_resource",
    "snowflake:index/openflowDeploymentByoc:OpenflowDeploymentByoc": "snowflake_openflow_deployment_byoc_resource",
    "snowflake:index/openflowDeploymentSnowflakeManaged:OpenflowDeploymentSnowflakeManaged": "snowflake_openflow_deployment_snowflake_managed_resource",
    "snowflake:index/openflowRuntime:OpenflowRuntime": "snowflake_openflow_runtime_resource",
    "snowflake:index/pipe:Pipe": "snowflake_pipe_resource",
    "snowflake:index/postgresInstance:PostgresInstance": "snowflake_postgres_instance_resource",
    "snowflake:index/procedureJava:ProcedureJava": "snowflake_procedure_java_resource",
    "snowflake:index/procedureJavascript:ProcedureJavascript": "snowflake_procedure_javascript_resource",
    "snowflake:index/procedurePython:ProcedurePython": "snowflake_procedure_python_resource",
    "snowflake:index/procedureScala:ProcedureScala": "snowflake_procedure_scala_resource",
    "snowflake:index/procedureSql:ProcedureSql": "snowflake_procedure_sql_resource",
    "snowflake:index/semanticView:SemanticView": "snowflake_semantic_view_resource",
    "snowflake:index/sequence:Sequence": "snowflake_sequence_resource",
    "snowflake:index/share:Share": "snowflake_share_resource",
    "snowflake:index/stage:Stage": "snowflake_stage_resource",
    "snowflake:index/storageIntegration:StorageIntegration": "snowflake_storage_integration_resource",
    "snowflake:index/table:Table": "snowflake_table_resource",
    "snowflake:index/tableColumnMaskingPolicyApplication:TableColumnMaskingPolicyApplication": "snowflake_table_column_masking_policy_application_resource",
    "snowflake:index/tableConstraint:TableConstraint": "snowflake_table_constraint_resource",
    "snowflake:index/userPasswordPolicyAttachment:UserPasswordPolicyAttachment": "snowflake_user_password_policy_attachment_resource",
    "snowflake:index/userPublicKeys:UserPublicKeys": "snowflake_user_public_keys_resource",
}
"""Resource type token -> the preview feature name that enables it."""


def features_for(types: Iterable[str]) -> list[str]:
    """The preview features a provider needs to manage resources of these types (sorted, no repeats)."""
    return sorted({PREVIEW_FEATURES[t] for t in types if t in PREVIEW_FEATURES})
