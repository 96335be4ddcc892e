//! Settings and endpoints: the documented defaults, and each partition's URLs and signing regions.

use super::*;

#[test]
fn default_settings_are_the_documented_ones() {
    let s = ConnectorSettings::default();
    assert_eq!(s.connect_timeout, Duration::from_millis(3100));
    assert_eq!(s.attempt_timeout, Duration::from_secs(10));
    assert_eq!(s.operation_timeout, Duration::from_secs(30));
    assert_eq!(s.max_attempts, 3);
    assert!(s.ca_bundle.is_none() && s.proxy_from_env);
}

#[test]
fn endpoints_follow_the_partition_of_the_region() {
    let cases = [
        (
            "eu-west-1",
            "https://iam.amazonaws.com",
            "https://sts.eu-west-1.amazonaws.com",
        ),
        (
            "us-east-1",
            "https://iam.amazonaws.com",
            "https://sts.us-east-1.amazonaws.com",
        ),
        (
            "cn-north-1",
            "https://iam.cn-north-1.amazonaws.com.cn",
            "https://sts.cn-north-1.amazonaws.com.cn",
        ),
        (
            "us-gov-west-1",
            "https://iam.us-gov.amazonaws.com",
            "https://sts.us-gov-west-1.amazonaws.com",
        ),
    ];
    for (region, iam, sts) in cases {
        assert_eq!(default_endpoint(Service::Iam, region), iam, "{region}");
        assert_eq!(default_endpoint(Service::Sts, region), sts, "{region}");
        assert_eq!(
            Endpoints::for_target(&target(region, None)),
            Endpoints {
                iam: iam.into(),
                sts: sts.into()
            }
        );
    }
    let local = Endpoints::for_target(&target("cn-north-1", Some("http://127.0.0.1:5000")));
    assert_eq!(
        local,
        Endpoints {
            iam: "http://127.0.0.1:5000".into(),
            sts: "http://127.0.0.1:5000".into()
        }
    );
}

#[tokio::test]
async fn requests_go_to_the_partitions_endpoints_signed_for_its_region() {
    // (region, IAM URL, IAM signing region, STS URL)
    let cases = [
        (
            "eu-west-1",
            "https://iam.amazonaws.com/",
            "us-east-1",
            "https://sts.eu-west-1.amazonaws.com/",
        ),
        (
            "cn-north-1",
            "https://iam.cn-north-1.amazonaws.com.cn/",
            "cn-north-1",
            "https://sts.cn-north-1.amazonaws.com.cn/",
        ),
        (
            "us-gov-west-1",
            "https://iam.us-gov.amazonaws.com/",
            "us-gov-west-1",
            "https://sts.us-gov-west-1.amazonaws.com/",
        ),
    ];
    for (region, iam_url, iam_signing, sts_url) in cases {
        let capture = Capture::new(canned);
        let client = capture
            .connector(test_settings())
            .connect(&target(region, None));
        client.list_access_keys("alice").await.unwrap();
        client.caller_identity().await.unwrap();
        let seen = capture.seen();
        assert_eq!(seen[0].uri, iam_url, "{region}");
        assert!(
            seen[0]
                .authorization
                .contains(&format!("/{iam_signing}/iam/aws4_request")),
            "{:?}",
            seen[0]
        );
        assert_eq!(seen[2].uri, sts_url, "{region}");
        assert!(
            seen[2]
                .authorization
                .contains(&format!("/{region}/sts/aws4_request")),
            "{:?}",
            seen[2]
        );
    }
}
