{#- Raw bars, renamed and cast only (one row per raw row). -#}
with

source as (

    select * from {{ source('raw', 'stock_prices') }}

),

renamed as (

    select
        cast(symbol as {{ dbt.type_string() }}) as symbol,
        cast(interval as {{ dbt.type_string() }}) as bar_interval,
        case interval
            when '1min' then 1
            when '5min' then 5
            when '15min' then 15
            when '30min' then 30
            when '60min' then 60
            when '1day' then 1440
        end as interval_minutes,
        bar_ts,
        cast(open as double) as open_price,
        cast(high as double) as high_price,
        cast(low as double) as low_price,
        cast(close as double) as close_price,
        cast(volume as {{ dbt.type_bigint() }}) as volume,
        cast(source as {{ dbt.type_string() }}) as source_name,
        produced_at,
        cast(schema_version as {{ dbt.type_int() }}) as schema_version,
        cast(trade_date as date) as trade_date,
        cast(is_regular_session as {{ dbt.type_boolean() }}) as is_regular_session,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        kafka_ts,
        ingest_date,
        bronze_file,
        loaded_at

    from source

)

select * from renamed
