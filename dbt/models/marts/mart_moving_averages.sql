{#-
  Simple moving averages of the daily close over the last 20 and 50 trading days (current day
  included) and 20-day volatility = sample standard deviation of the last 20 daily returns
  (not annualised). Each is null until its window is full.
-#}
with

daily as (

    select symbol, trade_date, close, daily_return from {{ ref('mart_daily_returns') }}

),

windows as (

    select
        symbol,
        trade_date,
        close,
        count(close) over (
            partition by symbol order by trade_date rows between 19 preceding and current row
        ) as closes_20,
        avg(close) over (
            partition by symbol order by trade_date rows between 19 preceding and current row
        ) as avg_close_20,
        count(close) over (
            partition by symbol order by trade_date rows between 49 preceding and current row
        ) as closes_50,
        avg(close) over (
            partition by symbol order by trade_date rows between 49 preceding and current row
        ) as avg_close_50,
        count(daily_return) over (
            partition by symbol order by trade_date rows between 19 preceding and current row
        ) as returns_20,
        stddev_samp(daily_return) over (
            partition by symbol order by trade_date rows between 19 preceding and current row
        ) as stddev_return_20
    from daily

),

final as (

    select
        symbol,
        trade_date,
        close,
        case when closes_20 = 20 then avg_close_20 end as sma_20,
        case when closes_50 = 50 then avg_close_50 end as sma_50,
        case when returns_20 = 20 then stddev_return_20 end as volatility_20
    from windows

)

select * from final
