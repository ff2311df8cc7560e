{#-
  Daily OHLCV per symbol rolled up from intraday bars of the regular session (09:30-16:00
  New York). When a symbol has bars of several intervals on a day, only the finest interval is
  used (so volume is not counted twice); a day that only has a daily bar uses that bar.
  open = open of the first bar (by bar_ts), close = close of the last bar, high = max(high),
  low = min(low), volume = sum(volume),
  vwap = sum(typical price * volume) / sum(volume) with typical price = (high + low + close) / 3
  (null when the day's volume is 0).
-#}
with

bars as (

    select * from {{ ref('fact_stock') }}
    where is_regular_session

),

day_intervals as (

    select
        symbol,
        trade_date,
        min(interval_minutes) as interval_minutes
    from bars
    group by symbol, trade_date

),

day_bars as (

    select bars.*
    from bars
    inner join day_intervals
        on bars.symbol = day_intervals.symbol
        and bars.trade_date = day_intervals.trade_date
        and bars.interval_minutes = day_intervals.interval_minutes

),

ordered_bars as (

    select
        *,
        row_number() over (partition by symbol, trade_date order by bar_ts asc) as first_rank,
        row_number() over (partition by symbol, trade_date order by bar_ts desc) as last_rank
    from day_bars

),

daily as (

    select
        symbol,
        trade_date,
        max(case when first_rank = 1 then open_price end) as open,
        max(high_price) as high,
        min(low_price) as low,
        max(case when last_rank = 1 then close_price end) as close,
        sum(volume) as volume,
        sum((high_price + low_price + close_price) / 3 * volume) as typical_price_volume,
        count(*) as bar_count,
        max(interval) as source_interval
    from ordered_bars
    group by symbol, trade_date

),

final as (

    select
        symbol,
        trade_date,
        open,
        high,
        low,
        close,
        cast(volume as {{ dbt.type_bigint() }}) as volume,
        case when volume > 0 then typical_price_volume / volume end as vwap,
        cast(bar_count as {{ dbt.type_bigint() }}) as bar_count,
        source_interval
    from daily

)

select * from final
