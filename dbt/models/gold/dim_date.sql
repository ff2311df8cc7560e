{#-
  One row per (bar timestamp, exchange time zone) that fact_stock holds: the calendar parts of the
  wall-clock time at the bar's exchange (dim_companies.exchange_timezone, from exchange_calendars),
  so an XLON bar's hour is London's and an XNYS bar's New York's. date_key comes from fact_stock
  (macro date_key), so every fact row finds its row here.
-#}
with

fact_stock as (

    select * from {{ ref('fact_stock') }}

),

bar_times as (

    select distinct
        date_key,
        bar_ts,
        coalesce(exchange_timezone, '{{ var("exchange_timezone", "America/New_York") }}') as exchange_timezone
    from fact_stock

),

localized as (

    select
        date_key,
        bar_ts,
        exchange_timezone,
        {{ stockpipe.to_exchange_local('bar_ts', 'exchange_timezone') }} as local_ts
    from bar_times

),

final as (

    select
        date_key,
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
        cast(extract(minute from local_ts) as {{ dbt.type_int() }}) as minute,
        exchange_timezone
    from localized

)

select * from final
