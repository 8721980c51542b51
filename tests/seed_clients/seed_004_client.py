import requests
# Configuration
api_key = "YOUR_API_KEY"
# Get API status
response = requests.get(
    "https://api.wickson.ai/v1/status",
    headers={"X-Api-Key": api_key}
)
# Process response
if response.status_code == 200:
    data = response.json()["data"]
    # Print system status
    print(f"API Status: {data['status']} (v{data['version']})")
    print(f"Timestamp: {data['timestamp']}")
    # Print component status
    print("\nComponent Status:")
    for component, status in data["components"].items():
        print(f"- {component}: {status}")
    # Print account information
    print(f"\nAccount Tier: {data['account']['tier']}")
    rate_limits = data['account']['rate_limits']
    print(f"Rate Limits: {rate_limits['remaining']}/{rate_limits['limit']} remaining")
    print(f"Rate Reset: {rate_limits['reset_time']}")
    # Print performance metrics
    print(f"\nResponse Time: {data['performance']['response_time_ms']}ms")
    # Check for maintenance notices
    if "notice" in data:
        print(f"\n NOTICE: {data['notice']['message']}")
        print(f" Estimated completion: {data['notice']['estimated_completion']}")
elif response.status_code == 503:
    print("API is currently unavailable (Service status: critical)")
else:
    print(f"Error: {response.status_code} - {response.text}")
