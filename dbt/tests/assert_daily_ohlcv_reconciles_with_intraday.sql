{#-
  The daily rollup agrees with the intraday rows it came from: for every (symbol, day) of
  regular-session bars at the day's finest interval, bar count, volume, high, low, the first
  bar's open and the last bar's close match mart_daily_ohlcv — and no day is missing or extra.
  Written independently of the mart's SQL (min/max bar_ts joins instead of window ranks).
-#}
with

bars as (

    select * from {{ ref('fact_stock') }}
    where is_regular_session

),

finest as (

    select symbol, trade_date, min(interval_minutes) as interval_minutes
    from bars
    group by symbol, trade_date

),

day_bars as (

    select bars.*
    from bars
    inner join finest
        on bars.symbol = finest.symbol
        and bars.trade_date = finest.trade_date
        and bars.interval_minutes = finest.interval_minutes

),

bounds as (

    select
        symbol,
        trade_date,
        count(*) as bar_count,
        sum(volume) as volume,
        max(high_price) as high,
        min(low_price) as low,
        min(bar_ts) as first_bar_ts,
        max(bar_ts) as last_bar_ts
    from day_bars
    group by symbol, trade_date

),

expected as (

    select
        bounds.*,
        first_bar.open_price as open,
        last_bar.close_price as close
    from bounds
    inner join day_bars as first_bar
        on first_bar.symbol = bounds.symbol and first_bar.bar_ts = bounds.first_bar_ts
    inner join day_bars as last_bar
        on last_bar.symbol = bounds.symbol and last_bar.bar_ts = bounds.last_bar_ts

),

mart as (

    select * from {{ ref('mart_daily_ohlcv') }}

)

select
    coalesce(expected.symbol, mart.symbol) as symbol,
    coalesce(expected.trade_date, mart.trade_date) as trade_date
from expected
full outer join mart
    on expected.symbol = mart.symbol
    and expected.trade_date = mart.trade_date
where expected.symbol is null
   or mart.symbol is null
   or expected.bar_count <> mart.bar_count
   or expected.volume <> mart.volume
   or expected.high <> mart.high
   or expected.low <> mart.low
   or expected.open <> mart.open
   or expected.close <> mart.close
