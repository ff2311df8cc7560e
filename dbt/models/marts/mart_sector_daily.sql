{#- Sector performance per day: symbols traded, mean daily return, total volume. -#}
with

returns as (

    select symbol, trade_date, daily_return from {{ ref('mart_daily_returns') }}

),

volumes as (

    select symbol, trade_date, volume from {{ ref('mart_daily_ohlcv') }}

),

companies as (

    select symbol, sector from {{ ref('dim_companies') }}

),

joined as (

    select
        coalesce(companies.sector, 'Unknown') as sector,
        returns.trade_date,
        returns.symbol,
        returns.daily_return,
        volumes.volume
    from returns
    inner join volumes
        on returns.symbol = volumes.symbol
        and returns.trade_date = volumes.trade_date
    left join companies
        on returns.symbol = companies.symbol

),

final as (

    select
        sector,
        trade_date,
        count(distinct symbol) as symbols,
        avg(daily_return) as avg_return,
        cast(sum(volume) as {{ dbt.type_bigint() }}) as total_volume
    from joined
    group by sector, trade_date

)

select * from final
