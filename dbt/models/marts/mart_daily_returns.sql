{#- Close-to-close daily return per symbol: close / previous trading day's close - 1. -#}
with

daily as (

    select symbol, trade_date, close from {{ ref('mart_daily_ohlcv') }}

),

with_previous as (

    select
        symbol,
        trade_date,
        close,
        lag(close) over (partition by symbol order by trade_date) as prev_close
    from daily

),

final as (

    select
        symbol,
        trade_date,
        close,
        prev_close,
        case when prev_close > 0 then close / prev_close - 1 end as daily_return
    from with_previous

)

select * from final
