{#-
  What differs between DuckDB and Snowflake, behind adapter.dispatch. Every macro takes a SQL
  expression of a timestamp-with-time-zone (an instant) and returns a SQL expression.
-#}

{#- The instant as 'YYYY-MM-DDTHH:MI:SSZ' in UTC (the text hashed into date_key and id). -#}
{% macro utc_iso(ts) -%}
    {{ return(adapter.dispatch('utc_iso', 'stockpipe')(ts)) }}
{%- endmacro %}

{% macro duckdb__utc_iso(ts) -%}
    strftime(timezone('UTC', {{ ts }}), '%Y-%m-%dT%H:%M:%SZ')
{%- endmacro %}

{% macro snowflake__utc_iso(ts) -%}
    (to_varchar(convert_timezone('UTC', {{ ts }})::timestamp_ntz, 'YYYY-MM-DD')
     || 'T' || to_varchar(convert_timezone('UTC', {{ ts }})::timestamp_ntz, 'HH24:MI:SS') || 'Z')
{%- endmacro %}

{#- The instant as a wall-clock timestamp (no zone) in the exchange's time zone. -#}
{#- timezone: a SQL expression naming an IANA zone (a column such as dim_companies.exchange_timezone). -#}
{% macro to_exchange_local(ts, timezone) -%}
    {{ return(adapter.dispatch('to_exchange_local', 'stockpipe')(ts, timezone)) }}
{%- endmacro %}

{% macro duckdb__to_exchange_local(ts, timezone) -%}
    timezone({{ timezone }}, {{ ts }})
{%- endmacro %}

{% macro snowflake__to_exchange_local(ts, timezone) -%}
    convert_timezone({{ timezone }}, {{ ts }})::timestamp_ntz
{%- endmacro %}

{#- ISO day of week of a wall-clock timestamp: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(local_ts) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'stockpipe')(local_ts)) }}
{%- endmacro %}

{% macro duckdb__iso_day_of_week(local_ts) -%}
    cast(isodow({{ local_ts }}) as integer)
{%- endmacro %}

{% macro snowflake__iso_day_of_week(local_ts) -%}
    cast(dayofweekiso({{ local_ts }}) as integer)
{%- endmacro %}

{#- ISO week number of a wall-clock timestamp (1 ... 53). -#}
{% macro iso_week(local_ts) -%}
    {{ return(adapter.dispatch('iso_week', 'stockpipe')(local_ts)) }}
{%- endmacro %}

{% macro duckdb__iso_week(local_ts) -%}
    cast(week({{ local_ts }}) as integer)
{%- endmacro %}

{% macro snowflake__iso_week(local_ts) -%}
    cast(weekiso({{ local_ts }}) as integer)
{%- endmacro %}

{#- Keys shared by the models (one definition, so fact and dimension always agree). -#}
{#-
  date_key: one dim_date row per (instant, exchange time zone). In the default zone (var
  exchange_timezone, America/New_York) it is md5 of the UTC ISO text, as before exchanges had
  zones, so keys already in an incremental fact_stock stay valid; elsewhere the zone is appended.
-#}
{% macro date_key(ts, timezone) -%}
    {%- set iso = stockpipe.utc_iso(ts) -%}
    {%- set default_zone = var('exchange_timezone', 'America/New_York') -%}
    {{ dbt.hash("case when " ~ timezone ~ " = '" ~ default_zone ~ "' then " ~ iso ~ " else "
                ~ dbt.concat([iso, "'|'", timezone]) ~ " end") }}
{%- endmacro %}

{% macro bar_id(symbol, bar_interval, ts) -%}
    {{ dbt.hash(dbt.concat([symbol, "'|'", bar_interval, "'|'", stockpipe.utc_iso(ts)])) }}
{%- endmacro %}
