{#- Companies reference data, renamed and cast only. -#}
with

source as (

    select * from {{ source('raw', 'companies') }}

),

renamed as (

    select
        cast(upper(trim(symbol)) as {{ dbt.type_string() }}) as symbol,
        cast(asset_type as {{ dbt.type_string() }}) as asset_type,
        cast(name as {{ dbt.type_string() }}) as company_name,
        cast(description as {{ dbt.type_string() }}) as description,
        cast(exchange as {{ dbt.type_string() }}) as exchange,
        cast(sector as {{ dbt.type_string() }}) as sector,
        cast(industry as {{ dbt.type_string() }}) as industry

    from source

)

select * from renamed
