{#-
  One row per symbol: the companies reference data, plus every traded symbol that has no
  reference row (attributes null, has_reference_data false), so fact_stock.company_id always
  resolves.
-#}
with

companies as (

    select * from {{ ref('stg_companies') }}

),

exchange_timezones as (

    select * from {{ ref('stg_exchange_timezones') }}

),

traded_symbols as (

    select distinct symbol from {{ ref('stg_stock_prices') }}

),

ranked_companies as (

    select
        *,
        row_number() over (partition by symbol order by company_name, exchange) as symbol_rank
    from companies

),

listed as (

    select
        ranked_companies.symbol,
        ranked_companies.asset_type,
        ranked_companies.company_name as name,
        ranked_companies.sector,
        ranked_companies.industry,
        ranked_companies.description,
        ranked_companies.exchange,
        coalesce(exchange_timezones.timezone, '{{ var("exchange_timezone", "America/New_York") }}')
            as exchange_timezone,
        true as has_reference_data
    from ranked_companies
    left join exchange_timezones
        on exchange_timezones.exchange = upper(trim(ranked_companies.exchange))
    where ranked_companies.symbol_rank = 1

),

unlisted as (

    select
        traded_symbols.symbol,
        cast(null as {{ dbt.type_string() }}) as asset_type,
        cast(null as {{ dbt.type_string() }}) as name,
        cast(null as {{ dbt.type_string() }}) as sector,
        cast(null as {{ dbt.type_string() }}) as industry,
        cast(null as {{ dbt.type_string() }}) as description,
        cast(null as {{ dbt.type_string() }}) as exchange,
        '{{ var("exchange_timezone", "America/New_York") }}' as exchange_timezone,
        false as has_reference_data
    from traded_symbols
    left join listed
        on listed.symbol = traded_symbols.symbol
    where listed.symbol is null

),

final as (

    select * from listed
    union all
    select * from unlisted

)

select * from final
