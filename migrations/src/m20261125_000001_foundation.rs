//! Foundation: providers, the districts code list, idempotency keys and the
//! server's own keys.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
    Id,
    Name,
    Kind,
    AzavCertified,
    Address,
    District,
    Contact,
    Website,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(DeriveIden)]
enum Districts {
    Table,
    Code,
    LabelDe,
    LabelEn,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    Fingerprint,
    State,
    StatusCode,
    ResponseBody,
    Location,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Name,
    Value,
}

/// Leipzig's Ortsteile with their official two-digit codes (Stadt Leipzig,
/// Amt für Statistik und Wahlen). English labels are the proper names.
pub const LEIPZIG_DISTRICTS: &[(&str, &str)] = &[
    ("00", "Zentrum"),
    ("01", "Zentrum-Ost"),
    ("02", "Zentrum-Südost"),
    ("03", "Zentrum-Süd"),
    ("04", "Zentrum-West"),
    ("05", "Zentrum-Nordwest"),
    ("06", "Zentrum-Nord"),
    ("10", "Schönefeld-Abtnaundorf"),
    ("11", "Schönefeld-Ost"),
    ("12", "Mockau-Süd"),
    ("13", "Mockau-Nord"),
    ("14", "Thekla"),
    ("15", "Plaußig-Portitz"),
    ("20", "Neustadt-Neuschönefeld"),
    ("21", "Volkmarsdorf"),
    ("22", "Anger-Crottendorf"),
    ("23", "Sellerhausen-Stünz"),
    ("24", "Paunsdorf"),
    ("25", "Heiterblick"),
    ("26", "Mölkau"),
    ("27", "Engelsdorf"),
    ("28", "Baalsdorf"),
    ("29", "Althen-Kleinpösna"),
    ("30", "Reudnitz-Thonberg"),
    ("31", "Stötteritz"),
    ("32", "Probstheida"),
    ("33", "Meusdorf"),
    ("34", "Liebertwolkwitz"),
    ("35", "Holzhausen"),
    ("40", "Südvorstadt"),
    ("41", "Connewitz"),
    ("42", "Marienbrunn"),
    ("43", "Lößnig"),
    ("44", "Dölitz-Dösen"),
    ("50", "Schleußig"),
    ("51", "Plagwitz"),
    ("52", "Kleinzschocher"),
    ("53", "Großzschocher"),
    ("54", "Knautkleeberg-Knauthain"),
    ("55", "Hartmannsdorf-Knautnaundorf"),
    ("60", "Schönau"),
    ("61", "Grünau-Ost"),
    ("62", "Grünau-Mitte"),
    ("63", "Grünau-Siedlung"),
    ("64", "Lausen-Grünau"),
    ("65", "Grünau-Nord"),
    ("66", "Miltitz"),
    ("70", "Lindenau"),
    ("71", "Altlindenau"),
    ("72", "Neulindenau"),
    ("73", "Leutzsch"),
    ("74", "Böhlitz-Ehrenberg"),
    ("75", "Burghausen-Rückmarsdorf"),
    ("80", "Möckern"),
    ("81", "Wahren"),
    ("82", "Lützschena-Stahmeln"),
    ("83", "Lindenthal"),
    ("90", "Gohlis-Süd"),
    ("91", "Gohlis-Mitte"),
    ("92", "Gohlis-Nord"),
    ("93", "Eutritzsch"),
    ("94", "Seehausen"),
    ("95", "Wiederitzsch"),
];

/// The resource columns every table shares: id, timestamps, version.
pub fn resource_table<T: IntoIden + 'static>(name: T) -> TableCreateStatement {
    Table::create().table(name).if_not_exists().col(pk_uuid(Alias::new("id"))).to_owned()
}

pub fn resource_meta(table: &mut TableCreateStatement) {
    table
        .col(timestamp_with_time_zone(Alias::new("created_at")))
        .col(timestamp_with_time_zone(Alias::new("updated_at")))
        .col(integer(Alias::new("version")).default(1));
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut providers = resource_table(Providers::Table);
        providers
            .col(string_len(Providers::Name, 300))
            .col(string_len(Providers::Kind, 40))
            .col(boolean(Providers::AzavCertified).default(false))
            .col(json_binary_null(Providers::Address))
            .col(string_len_null(Providers::District, 8))
            .col(json_binary_null(Providers::Contact))
            .col(string_len_null(Providers::Website, 2000));
        resource_meta(&mut providers);
        manager.create_table(providers).await?;
        let _ = (Providers::Id, Providers::CreatedAt, Providers::UpdatedAt, Providers::Version);
        manager
            .create_index(
                Index::create()
                    .name("ix_providers_name")
                    .table(Providers::Table)
                    .col(Providers::Name)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Districts::Table)
                    .if_not_exists()
                    .col(string_len(Districts::Code, 8).primary_key())
                    .col(string_len(Districts::LabelDe, 200))
                    .col(string_len(Districts::LabelEn, 200))
                    .to_owned(),
            )
            .await?;
        let mut insert = Query::insert()
            .into_table(Districts::Table)
            .columns([Districts::Code, Districts::LabelDe, Districts::LabelEn])
            .to_owned();
        for (code, name) in LEIPZIG_DISTRICTS {
            insert.values_panic([(*code).into(), (*name).into(), (*name).into()]);
        }
        manager.exec_stmt(insert).await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(string_len(IdempotencyKeys::Scope, 600))
                    .col(string_len(IdempotencyKeys::Key, 255))
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(string_len(IdempotencyKeys::State, 16))
                    .col(integer_null(IdempotencyKeys::StatusCode))
                    .col(text_null(IdempotencyKeys::ResponseBody))
                    .col(string_len_null(IdempotencyKeys::Location, 2000))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(Index::create().col(IdempotencyKeys::Scope).col(IdempotencyKeys::Key))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_created_at")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .if_not_exists()
                    .col(string_len(ServerKeys::Name, 64).primary_key())
                    .col(string_len(ServerKeys::Value, 200))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Providers::Table.into_iden(),
            Districts::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            ServerKeys::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
