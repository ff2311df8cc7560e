{#-
  One row per bar (the seed's FACT_STOCK, keyed properly). Incremental: each run takes the rows
  of the latest load(s) (loaded_at >= the newest loaded_at already here; a reloaded partition
  gets a new loaded_at) and delete+inserts them by id, so a re-sent newer version of a bar
  replaces the old one. Within a batch the newest version wins (produced_at, then Kafka order).
  tmp_relation_type (Snowflake only): the batch is staged in a transient table.
  exchange_timezone (from dim_companies) places the bar in dim_date; it was added after the first
  release, so on_schema_change appends it to an existing table, where older rows hold null (they
  were all keyed in the default zone, which dim_date assumes for them).
-#}
{{
    config(
        materialized='incremental',
        unique_key='id',
        incremental_strategy='delete+insert',
        tmp_relation_type='transient',
        on_schema_change='append_new_columns'
    )
}}

with

stock_prices as (

    select * from {{ ref('stg_stock_prices') }}
    {% if is_incremental() %}
    where (select max(loaded_at) from {{ this }}) is null
       or loaded_at >= (select max(loaded_at) from {{ this }})
    {% endif %}

),

companies as (

    select symbol, exchange_timezone from {{ ref('dim_companies') }}

),

latest_versions as (

    select
        *,
        row_number() over (
            partition by symbol, bar_interval, bar_ts
            order by produced_at desc, kafka_ts desc, kafka_offset desc
        ) as version_rank
    from stock_prices

),

zoned as (

    select
        latest_versions.*,
        coalesce(companies.exchange_timezone, '{{ var("exchange_timezone", "America/New_York") }}')
            as exchange_timezone
    from latest_versions
    left join companies
        on companies.symbol = latest_versions.symbol
    where latest_versions.version_rank = 1

),

final as (

    select
        {{ stockpipe.bar_id('symbol', 'bar_interval', 'bar_ts') }} as id,
        symbol as company_id,
        {{ stockpipe.date_key('bar_ts', 'exchange_timezone') }} as date_key,
        open_price,
        close_price,
        high_price,
        low_price,
        volume,
        symbol,
        bar_interval as interval,
        interval_minutes,
        bar_ts,
        trade_date,
        is_regular_session,
        source_name,
        produced_at,
        loaded_at,
        exchange_timezone
    from zoned

)

select * from final
