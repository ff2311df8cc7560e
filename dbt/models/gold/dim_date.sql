{#-
  One row per distinct bar timestamp (the seed's DIM_DATE, made intraday): calendar parts of
  the exchange-local wall-clock time; date_key = md5 of the UTC ISO timestamp.
-#}
with

bar_times as (

    select distinct bar_ts from {{ ref('stg_stock_prices') }}

),

localized as (

    select
        bar_ts,
        {{ stockpipe.to_exchange_local('bar_ts') }} as local_ts
    from bar_times

),

final as (

    select
        {{ stockpipe.date_key('bar_ts') }} as date_key,
        local_ts as date,
        bar_ts,
        cast(local_ts as date) as trade_date,
        cast(extract(year from local_ts) as {{ dbt.type_int() }}) as year,
        cast(extract(month from local_ts) as {{ dbt.type_int() }}) as month,
        cast(extract(day from local_ts) as {{ dbt.type_int() }}) as day,
        {{ stockpipe.iso_day_of_week('local_ts') }} as day_of_week,
        cast(extract(quarter from local_ts) as {{ dbt.type_int() }}) as quarter,
        {{ stockpipe.iso_week('local_ts') }} as week,
        cast(extract(hour from local_ts) as {{ dbt.type_int() }}) as hour,
        cast(extract(minute from local_ts) as {{ dbt.type_int() }}) as minute
    from localized

)

select * from final
